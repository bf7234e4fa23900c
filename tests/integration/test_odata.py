"""Graph conventions: keyset paging through @odata.nextLink, $count, $orderby, $select,
$filter, and the request-id / client-request-id headers."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.factories import Tenant, TenantFactory, unique


@pytest.fixture()
def tenant(tenants: TenantFactory) -> Tenant:
    return tenants()


def _make_groups(tenant: Tenant, prefix: str, count: int) -> dict[str, str]:
    made = {}
    for index in range(count):
        # Pairs of equal names, so the id must break ties between pages.
        name = f"{prefix}-{index // 2:02d}"
        made[tenant.ok("POST", "/beta/groups", json={"displayName": name})["id"]] = name
    return made


def _follow(tenant: Tenant, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    pages = 0
    while url:
        page = tenant.ok("GET", url)
        items += page["value"]
        next_link = page.get("@odata.nextLink")
        if next_link:
            parts = urlsplit(next_link)
            assert parts.netloc == "testserver"
            url = f"{parts.path}?{parts.query}"
        else:
            url = ""
        pages += 1
        assert pages < 50
    return items


@pytest.mark.parametrize("order", ["", "&$orderby=displayName desc", "&$orderby=createdDateTime"])
def test_next_link_returns_every_row_exactly_once(tenant: Tenant, order: str) -> None:
    prefix = unique("page")
    made = _make_groups(tenant, prefix, 23)
    filter_ = quote(f"startswith(displayName, '{prefix}')")
    items = _follow(tenant, f"/beta/groups?$top=5&$filter={filter_}{order}")
    counts = Counter(item["id"] for item in items)
    assert set(counts) == set(made) and set(counts.values()) == {1}
    names = [item["displayName"] for item in items]
    if "desc" in order:
        assert names == sorted(names, reverse=True)
    elif not order:
        assert names == sorted(names)


def test_paging_is_stable_when_rows_are_added_between_pages(tenant: Tenant) -> None:
    prefix = unique("stable")
    made = _make_groups(tenant, prefix, 6)
    filter_ = quote(f"startswith(displayName, '{prefix}')")
    first = tenant.ok("GET", f"/beta/groups?$top=3&$filter={filter_}")
    # A row that sorts before the cursor does not shift the next page.
    tenant.ok("POST", "/beta/groups", json={"displayName": f"{prefix}-00-early"})
    parts = urlsplit(first["@odata.nextLink"])
    rest = _follow(tenant, f"{parts.path}?{parts.query}")
    seen = [item["id"] for item in first["value"] + rest]
    assert Counter(seen).most_common(1)[0][1] == 1
    assert set(made) <= set(seen)


def test_count_select_skip_and_top(tenant: Tenant) -> None:
    prefix = unique("count")
    _make_groups(tenant, prefix, 6)
    filter_ = quote(f"startswith(displayName, '{prefix}')")
    page = tenant.ok("GET", f"/beta/groups?$count=true&$top=2&$filter={filter_}")
    assert page["@odata.count"] == 6 and len(page["value"]) == 2
    assert page["@odata.context"].endswith("/beta/$metadata#groups")
    selected = tenant.ok("GET", f"/beta/groups?$select=displayName&$filter={filter_}")["value"]
    assert len(selected) == 6
    assert all(set(item) <= {"id", "displayName", "@odata.type"} for item in selected)
    assert all("securityEnabled" not in item for item in selected)
    skipped = tenant.ok("GET", f"/beta/groups?$skip=4&$filter={filter_}")["value"]
    assert len(skipped) == 2
    assert "@odata.nextLink" in page
    assert tenant.ok("GET", f"/beta/groups?$top=0&$filter={filter_}")["value"] == []


def test_filter_operators(tenant: Tenant) -> None:
    prefix = unique("f")
    a = tenant.ok("POST", "/beta/groups", json={"displayName": f"{prefix}-alpha"})["id"]
    b = tenant.ok("POST", "/beta/groups", json={"displayName": f"{prefix}-beta"})["id"]
    c = tenant.ok(
        "POST",
        "/beta/groups",
        json={"displayName": f"{prefix}-it's", "securityEnabled": False, "mailEnabled": True},
    )["id"]
    mine = f"startswith(displayName, '{prefix}')"

    def ids(expression: str) -> set[str]:
        page = tenant.ok("GET", f"/beta/groups?$filter={quote(expression)}&$top=999")
        return {item["id"] for item in page["value"]}

    assert ids(f"displayName eq '{prefix}-alpha'") == {a}
    assert ids(f"displayName eq '{prefix}-it''s'") == {c}
    assert ids(f"{mine} and displayName ne '{prefix}-alpha'") == {b, c}
    assert ids(f"displayName eq '{prefix}-alpha' or displayName eq '{prefix}-beta'") == {a, b}
    assert ids(f"displayName in ('{prefix}-alpha', '{prefix}-it''s', 'nope')") == {a, c}
    assert ids(f"{mine} and securityEnabled eq false") == {c}
    assert ids(f"{mine} and (mailEnabled eq true or displayName eq '{prefix}-beta')") == {b, c}
    assert ids(f"{mine} and not (securityEnabled eq true)") == {c}
    assert ids(f"id eq {a}") == {a}
    assert ids(f"id eq '{b}'") == {b}
    assert ids(f"{mine} and createdDateTime gt 2000-01-01T00:00:00Z") == {a, b, c}
    assert ids(f"{mine} and createdDateTime lt '2000-01-01T00:00:00Z'") == set()
    assert ids(f"startswith(displayName, '{prefix.upper()}-AL')") == {a}  # case-insensitive
    assert ids("startswith(displayName, '%')") == set()  # LIKE wildcards are literal
    assert ids(f"startswith(displayName, '{prefix[:-1]}_')") == set()


def test_request_ids(tenant: Tenant) -> None:
    response = tenant.call("GET", "/beta/me")
    request_id = response.headers["request-id"]
    assert uuid.UUID(request_id)
    assert response.headers["client-request-id"] == request_id  # none sent: ours is used
    mine = str(uuid.uuid4())
    response = tenant.call("GET", "/beta/me", headers={"client-request-id": mine})
    assert response.headers["client-request-id"] == mine
    assert response.headers["request-id"] != mine
    error = tenant.call("GET", f"/beta/users/{uuid.uuid4()}", headers={"client-request-id": mine})
    inner = error.json()["error"]["innerError"]
    assert inner["client-request-id"] == mine
    assert inner["request-id"] == error.headers["request-id"]
    # Public endpoints and refusals carry them too.
    for response in (
        tenant.client.get("/healthz"),
        tenant.client.get("/beta/me", headers={"client-request-id": mine}),
        tenant.client.post("/oauth2/token", data={}),
    ):
        assert uuid.UUID(response.headers["request-id"])
        assert response.headers["client-request-id"]
    assert (
        tenant.client.get("/beta/me", headers={"client-request-id": mine}).headers[
            "client-request-id"
        ]
        == mine
    )


def test_openapi_and_docs_are_served(tenant: Tenant) -> None:
    document = tenant.client.get("/openapi.json").json()
    assert "/beta/users" in document["paths"]
    assert tenant.client.get("/docs").status_code == 200


@pytest.mark.parametrize("joiner", ["and", "or"])
def test_a_filter_of_too_many_conditions_is_refused_not_a_500(tenant: Tenant, joiner: str) -> None:
    """~1,000 terms made SQLite fail ('Expression tree is too large'): bounded, on both."""
    terms = f" {joiner} ".join(f"displayName eq 'g{index}'" for index in range(1000))
    response = tenant.call("GET", "/beta/groups", params={"$filter": terms})
    assert response.status_code == 400
    assert "more than 100 conditions" in response.json()["error"]["message"]
    within = f" {joiner} ".join(f"displayName eq 'g{index}'" for index in range(100))
    assert tenant.call("GET", "/beta/groups", params={"$filter": within}).status_code == 200
