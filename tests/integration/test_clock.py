"""One clock, injected: expiry driven through the API and the admin center with a FakeClock,
without sleeping (create_app(settings, db, clock=...), countersign/clock.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from countersign.api.app import create_app
from countersign.auth.tokens import LEEWAY_SECONDS
from countersign.clock import FakeClock
from countersign.config import Settings
from countersign.store.db import Database
from tests.factories import PASSWORD, TenantFactory
from tests.integration.test_admin_center import signed_in
from tests.maa import REQUESTS, SCOPE_TAGS, Seed, seed


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture()
def clocked_app(settings: Settings, db: Database, clock: FakeClock) -> FastAPI:
    return create_app(settings, db, clock=clock)


@pytest.fixture()
def clocked(clocked_app: FastAPI, db: Database) -> Iterator[TenantFactory]:
    with TestClient(clocked_app) as client:
        yield TenantFactory(client, db)


def test_the_fake_clock_stands_still_until_moved() -> None:
    start = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    clock = FakeClock(start)
    assert clock() == clock() == start
    assert clock.advance(hours=2) == start + timedelta(hours=2) == clock()
    clock.set(start)
    assert clock() == start
    with pytest.raises(ValueError):
        FakeClock(datetime(2026, 12, 1))  # naive: not a time of this clock


def test_moving_the_clock_expires_a_request_in_the_api_and_the_admin_center(
    clocked: TenantFactory, clocked_app: FastAPI, clock: FakeClock
) -> None:
    s = seed(clocked)
    s.activate_policy("role")
    request_id = s.submit("POST", SCOPE_TAGS, json={"displayName": "Lisbon"})
    request = s.request(request_id)
    assert request["status"] == "needsApproval"
    expires = datetime.fromisoformat(request["expirationDateTime"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(request["requestDateTime"].replace("Z", "+00:00")) == clock()

    clock.set(expires - timedelta(seconds=1))  # the last second it can still be approved
    signed_in_again(s)  # days have passed on this clock: the access tokens have expired
    assert s.request(request_id)["status"] == "needsApproval"
    pending = s.tenant.ok("GET", REQUESTS, params={"$filter": "status eq 'needsApproval'"})
    assert request_id in [r["id"] for r in pending["value"]]

    clock.set(expires)  # the request's lifetime is over: nothing wrote that, the clock moved
    assert s.request(request_id)["status"] == "expired"
    listed = s.tenant.ok("GET", REQUESTS, params={"$filter": "status eq 'expired'"})["value"]
    assert [r["id"] for r in listed] == [request_id]
    refused = s.approve(request_id)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["innerError"]["reason"] == "requestExpired"
    assert s.request(request_id)["status"] == "expired"  # the refusal decided nothing

    web = signed_in(clocked_app, s.admin2.upn)  # a session of the moved clock
    page = web.get(f"/admin/requests/{request_id}")
    assert page.status_code == 200
    assert 'id="request-status">Expired<' in page.text
    assert "This request is expired" in page.text


def signed_in_again(s: Seed) -> None:
    s.tenant.admin = s.tenant.sign_in(s.tenant.admin.upn)
    s.admin1 = s.tenant.sign_in(s.admin1.upn)
    s.admin2 = s.tenant.sign_in(s.admin2.upn)


def test_access_tokens_live_by_the_injected_clock(
    clocked: TenantFactory, settings: Settings, clock: FakeClock
) -> None:
    s = seed(clocked)
    assert s.tenant.call("GET", "/beta/me", s.admin1).status_code == 200
    clock.advance(seconds=settings.access_token_minutes * 60 + LEEWAY_SECONDS - 1)
    assert s.tenant.call("GET", "/beta/me", s.admin1).status_code == 200  # within the leeway
    clock.advance(seconds=2)
    expired = s.tenant.call("GET", "/beta/me", s.admin1)
    assert expired.status_code == 401, expired.text
    assert expired.json()["error"]["message"] == "Access token has expired."

    # A token issued later than the clock says it is now (beyond the leeway) is refused.
    issued = s.tenant.client.post(
        "/oauth2/token",
        data={"grant_type": "password", "username": s.admin1.upn, "password": PASSWORD},
    )
    assert issued.status_code == 200, issued.text
    clock.advance(seconds=-(LEEWAY_SECONDS + 1))
    early = s.tenant.client.get(
        "/beta/me", headers={"Authorization": f"Bearer {issued.json()['access_token']}"}
    )
    assert early.status_code == 401, early.text
    assert early.json()["error"]["message"] == "Access token is not valid yet."
