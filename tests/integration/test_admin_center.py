"""The web admin center over HTTP (no browser): sessions, CSRF, sign-out, lockout, escaping, and
the multi admin approval story driven through its forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Mount, Route

from countersign.api.app import create_app
from countersign.auth import sessions
from countersign.config import Settings
from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import PASSWORD, Tenant, TenantFactory, unique
from tests.maa import Seed

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PARAM = re.compile(r"\{[^}]+\}")


class Browser:
    """A cookie jar signed in to the admin center, reading CSRF tokens off the pages."""

    def __init__(self, app: FastAPI, base_url: str = "http://testserver"):
        self.client = TestClient(app, base_url=base_url, follow_redirects=False)
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        found = CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=form)

    def sign_in(self, upn: str, password: str = PASSWORD) -> Any:
        self.get("/admin/sign-in")
        return self.post("/admin/sign-in", {"username": upn, "password": password})

    def follow(self, response: Any) -> Any:
        assert response.status_code == 303, (response.status_code, response.text[:2000])
        return self.get(response.headers["location"])


@pytest.fixture()
def web(app: FastAPI) -> Iterator[Browser]:
    web = Browser(app)
    yield web
    web.client.close()


def signed_in(app: FastAPI, upn: str) -> Browser:
    web = Browser(app)
    assert web.sign_in(upn).status_code == 303
    return web


def test_every_admin_page_redirects_to_sign_in_without_a_session(
    app: FastAPI, web: Browser
) -> None:
    walked = 0
    for context in iter_route_contexts(list(app.routes)):
        route, template = context.original_route, str(context.path)
        if isinstance(route, Mount) or not isinstance(route, Route):
            continue
        if not template.startswith("/admin") or template == "/admin/sign-in":
            continue
        path = PARAM.sub("x", template)
        for method in sorted(set(context.methods or {"GET"}) - {"HEAD"}):
            response = web.client.request(method, path)
            assert response.status_code == 303, (method, path, response.status_code)
            assert response.headers["location"].startswith("/admin/sign-in")
            walked += 1
    assert walked > 15


def test_sign_in_sets_a_hashed_http_only_lax_session_cookie(
    tenants: TenantFactory, web: Browser, db: Database
) -> None:
    tenant = tenants()
    response = web.sign_in(tenant.admin.upn)
    assert response.status_code == 303
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("countersign_session=")
    )
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http in tests; see the https test below
    token = cookie.split(";")[0].split("=", 1)[1]
    with db.read() as session:
        stored = session.scalars(
            select(t.WebSession.token_hash).where(t.WebSession.user_id == tenant.admin.id)
        ).all()
    assert sessions.token_hash(token) in stored and token not in stored
    home = web.follow(response)
    assert home.status_code == 200 and "Administrator 1" in home.text


def test_cookie_is_secure_behind_https_or_when_configured(
    tenants: TenantFactory, app: FastAPI, database_url: str, db: Database
) -> None:
    tenant = tenants()
    over_https = Browser(app, base_url="https://testserver")
    signed = over_https.sign_in(tenant.admin.upn)
    assert signed.status_code == 303, signed.text
    cookie = signed.headers["set-cookie"]
    assert "secure" in cookie.lower()
    configured = create_app(Settings(database_url=database_url, session_secure_cookie=True), db)
    # Behind a proxy that ends TLS the app sees plain http; the setting still marks cookies
    # Secure (the test client, like a browser, would not send them back over http itself).
    behind_proxy = Browser(configured)
    page = behind_proxy.get("/admin/sign-in")
    assert "secure" in page.headers["set-cookie"].lower()
    behind_proxy.client.cookies.set(sessions.SIGN_IN_CSRF_COOKIE, behind_proxy.csrf)
    signed = behind_proxy.post(
        "/admin/sign-in", {"username": tenant.admin.upn, "password": PASSWORD}
    )
    assert signed.status_code == 303
    assert "secure" in signed.headers["set-cookie"].lower()


def test_a_post_without_its_csrf_token_is_refused(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/groups")
    refused = web.post("/admin/groups/new", {"displayName": "x", "step": "review"}, csrf=False)
    assert refused.status_code == 403
    assert "security token" in refused.text
    wrong = web.post("/admin/sign-out", {"csrf_token": "0" * 64})
    assert wrong.status_code == 403
    assert web.get("/admin").status_code == 200  # still signed in


def test_sign_in_form_needs_its_csrf_token(tenants: TenantFactory, web: Browser) -> None:
    tenant = tenants()
    web.get("/admin/sign-in")
    response = web.post(
        "/admin/sign-in", {"username": tenant.admin.upn, "password": PASSWORD}, csrf=False
    )
    assert response.status_code == 403
    assert "countersign_session" not in response.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_on_the_server(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    web = signed_in(app, tenant.admin.upn)
    token = web.client.cookies.get(sessions.SESSION_COOKIE)
    web.get("/admin")
    out = web.post("/admin/sign-out")
    assert out.status_code == 303 and out.headers["location"].startswith("/admin/sign-in")
    assert "countersign_session=" in out.headers["set-cookie"]
    replayed = TestClient(app, follow_redirects=False)
    replayed.cookies.set(sessions.SESSION_COOKIE, token or "")
    assert replayed.get("/admin").status_code == 303


def test_wrong_password_then_lockout_message(tenants: TenantFactory, web: Browser) -> None:
    tenant = tenants()
    first = web.sign_in(tenant.admin.upn, "wrong-password")
    assert first.status_code == 400
    assert "The user name or password is incorrect." in first.text
    for _ in range(4):
        last = web.sign_in(tenant.admin.upn, "wrong-password")
    assert "locked" in last.text
    locked = web.sign_in(tenant.admin.upn)  # even the right password, for a while
    assert locked.status_code == 400 and "locked" in locked.text


def test_user_supplied_text_is_escaped(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    evil = '<script>alert("x")</script>'
    group_id = tenant.group(f"{evil} {unique('g')}")
    web = signed_in(app, tenant.admin.upn)
    for path in ("/admin/groups", f"/admin/groups/{group_id}"):
        response = web.get(path)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page = response.text
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_open_redirects_are_refused(tenants: TenantFactory, web: Browser) -> None:
    tenant = tenants()
    web.get("/admin/sign-in?next=https://evil.example/")
    response = web.post(
        "/admin/sign-in",
        {"username": tenant.admin.upn, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.headers["location"] == "/admin"


def test_unprotected_change_applies_at_once(tenants: TenantFactory, app: FastAPI) -> None:
    tenant = tenants()
    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/groups/new")
    name = unique("Helpdesk")
    review = web.post(
        "/admin/groups/new", {"step": "review", "f_displayName": name, "f_securityEnabled": "on"}
    )
    assert review.status_code == 200
    assert "Review + create" in review.text and "Business justification" not in review.text
    created = web.follow(
        web.post(
            "/admin/groups/new",
            {"step": "submit", "f_displayName": name, "f_securityEnabled": "on"},
        )
    )
    assert created.status_code == 200 and name in created.text


def approver_tenant(tenants: TenantFactory) -> tuple[Tenant, str, str]:
    """The seed's tenant: administrators 1 and 2, an approvers group on a role assignment."""
    tenant = tenants()
    admin2 = tenant.user(unique("admin2"), roles=("Intune Administrator",))
    approvers = tenant.group(unique("Intune Change Approvers"))
    tenant.add_member(approvers, tenant.admin.id)
    tenant.add_member(approvers, admin2.id)
    tenant.assign("Multi Admin Approval Approver", [approvers])
    return tenant, admin2.upn, approvers


def protect(
    tenant: Tenant,
    admin2_upn: str,
    approvers: str,
    name: str,
    policy_type: str,
    platform: str = "notApplicable",
) -> str:
    """An access policy made through the API's approval flow (admin 2 approves); its id."""
    seed = Seed(tenant, tenant.admin, tenant.sign_in(admin2_upn), approvers)
    return seed.activate_policy(policy_type, platform, displayName=name)


def test_access_policy_story_through_the_forms(tenants: TenantFactory, app: FastAPI) -> None:
    tenant, admin2_upn, approvers = approver_tenant(tenants)
    admin1 = signed_in(app, tenant.admin.upn)
    admin1.get("/admin/access-policies/new")
    state = {"displayName": "Protect apps", "description": "Four eyes on apps"}
    step = admin1.post("/admin/access-policies/new", {**state, "step": "basics", "go": "type"})
    assert "Policy type" in step.text
    state["policyType"] = "app"
    step = admin1.post("/admin/access-policies/new", {**state, "step": "type", "go": "platforms"})
    assert "Windows only" in step.text and "Non-Windows only" in step.text
    state["platform"] = "windows"
    step = admin1.post(
        "/admin/access-policies/new", {**state, "step": "platforms", "go": "approvers"}
    )
    assert "Add groups" in step.text or "add groups" in step.text
    missing = admin1.post(
        "/admin/access-policies/new", {**state, "step": "approvers", "go": "review"}
    )
    assert "Add at least one approver group." in missing.text
    state["approverGroupIds"] = approvers
    review = admin1.post(
        "/admin/access-policies/new", {**state, "step": "approvers", "go": "review"}
    )
    assert "Review + submit for approval" in review.text
    assert "Submit for approval" in review.text
    no_reason = admin1.post(
        "/admin/access-policies/new", {**state, "step": "review", "go": "submit"}
    )
    assert "business justification is required" in no_reason.text
    submitted = admin1.post(
        "/admin/access-policies/new",
        {**state, "step": "review", "go": "submit", "justification": "Seed story <b>now</b>"},
    )
    request_url = submitted.headers["location"].split("?")[0]
    assert request_url.startswith("/admin/requests/")
    page = admin1.get(request_url).text
    assert "Needs approval" in page and "Seed story &lt;b&gt;now&lt;/b&gt;" in page
    assert "You are the requester" in page and 'id="approve"' not in page
    # Active: the time left, and the requester may cancel (not complete yet).
    assert "left)" in page and 'id="cancel"' in page and 'id="complete"' not in page
    refused = admin1.post(f"{request_url}/approve", {"notes": "self"})
    assert refused.status_code == 400
    # In words on the page; the reason code stays in the API's innerError.reason.
    assert "You cannot approve this request: You are the requester" in refused.text
    assert "approverIsRequester" not in refused.text

    admin2 = signed_in(app, admin2_upn)
    assert ">1</span>" in admin2.get("/admin").text  # waiting for me
    received = admin2.get("/admin/requests/received").text
    assert "Protect apps" in received
    approved = admin2.follow(admin2.post(f"{request_url}/approve", {"notes": "Looks right"}))
    assert "Approved" in approved.text and "Looks right" in approved.text

    mine = admin1.get("/admin/requests/mine?status=approved").text
    assert "Protect apps" in mine
    assert 'id="complete"' in admin1.get(request_url).text
    done = admin1.follow(admin1.post(f"{request_url}/complete"))
    assert "Completed" in done.text
    assert "nothing more can be done" in done.text and 'id="cancel"' not in done.text
    policies = admin1.get("/admin/access-policies").text
    assert "Protect apps" in policies and "Windows only" in policies


def test_request_lists_filter_and_page(tenants: TenantFactory, app: FastAPI) -> None:
    tenant, _, approvers = approver_tenant(tenants)
    for n in range(3):
        tenant.call(
            "POST",
            "/beta/deviceManagement/operationApprovalPolicies",
            headers={"x-msft-approval-justification": "d2h5"},
            json={
                "displayName": f"Policy {n}",
                "policyType": "script",
                "policyPlatform": "notApplicable",
                "approverGroupIds": [approvers],
            },
        )
    web = signed_in(app, tenant.admin.upn)
    listed = web.get("/admin/requests?status=needsApproval&type=operationApprovalPolicy").text
    assert all(f"Policy {n}" in listed for n in range(3))
    assert "3 requests" in listed
    none = web.get("/admin/requests?status=completed").text
    assert "0 requests" in none
    by_name = web.get("/admin/requests?sort=name&dir=desc").text
    assert by_name.index("Policy 2") < by_name.index("Policy 0")


def test_every_page_renders_for_the_demo_tenant(app: FastAPI, db: Database) -> None:
    from countersign.services.demo import ensure_demo_tenant
    from countersign.web.sections import SECTIONS

    demo = ensure_demo_tenant(db)
    web = Browser(app)
    web.get("/admin/sign-in")
    assert (
        web.post(
            "/admin/sign-in", {"username": demo.administrators[0], "password": demo.password}
        ).status_code
        == 303
    )
    pages = ["/admin", "/admin/audit", "/admin/access-policies", "/admin/access-policies/new"]
    pages += ["/admin/requests", "/admin/requests/mine", "/admin/requests/received"]
    for slug in SECTIONS:
        listing = web.get(f"/admin/{slug}")
        assert listing.status_code == 200, (slug, listing.text[:500])
        first = re.search(rf'href="/admin/{slug}/([0-9a-zA-Z-]+)"', listing.text)
        if first and first.group(1) != "new":
            item = f"/admin/{slug}/{first.group(1)}"
            pages.append(item)
            detail = web.get(item).text
            pages += [f"{item}/{verb}" for verb in ("edit", "delete") if f"{item}/{verb}" in detail]
        if f'href="/admin/{slug}/new"' in listing.text:
            pages.append(f"/admin/{slug}/new")
    for path in pages:
        response = web.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])


def test_editing_and_deleting_a_policy_are_requests_too(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant, admin2_upn, approvers = approver_tenant(tenants)
    policy_id = protect(tenant, admin2_upn, approvers, "Protect scripts", "script")
    admin1 = signed_in(app, tenant.admin.upn)
    edit = admin1.get(f"/admin/access-policies/{policy_id}/edit")
    assert 'value="Protect scripts"' in edit.text
    state = {
        "displayName": "Protect every script",
        "description": "",
        "policyType": "script",
        "platform": "",
        "approvalsRequired": "1",
        "approverGroupIds": approvers,
        "version": re.search(r'name="version" value="(\d+)"', edit.text).group(1),  # type: ignore[union-attr]
    }
    review = admin1.post(
        f"/admin/access-policies/{policy_id}/edit", {**state, "step": "approvers", "go": "review"}
    )
    assert "Review + submit for approval" in review.text
    submitted = admin1.post(
        f"/admin/access-policies/{policy_id}/edit",
        {**state, "step": "review", "go": "submit", "justification": "Clearer name"},
    )
    request_url = submitted.headers["location"].split("?")[0]
    page = admin1.get(request_url).text
    assert "Change access policy" in page and "Protect every script" in page
    assert "/displayName" in page  # the raw diff, one click away

    # The policy is locked by its open request: deleting it now is refused, in words.
    confirm = admin1.get(f"/admin/access-policies/{policy_id}/delete")
    assert "Review + submit for approval" in confirm.text
    locked = admin1.post(
        f"/admin/access-policies/{policy_id}/delete", {"justification": "No longer needed"}
    )
    # It names the object and the open request, and links to it.
    assert "Protect scripts already has an open approval request" in locked.text
    assert "(Change access policy Protect scripts: name; waiting for approval" in locked.text
    assert f'<a href="{request_url}" id="open-request">Open the request</a>' in locked.text

    # Rejecting needs notes; the requester cancels; then the delete goes through as a request.
    admin2 = signed_in(app, admin2_upn)
    admin2.get(request_url)
    no_notes = admin2.post(f"{request_url}/reject", {"notes": ""})
    assert no_notes.status_code == 400
    # The error sits at the field, which says why it is invalid.
    assert (
        '<p class="field-error" id="notes-error" role="alert">'
        "Approver notes are required to reject.</p>"
    ) in no_notes.text
    assert 'aria-describedby="notes-hint notes-error" aria-invalid="true"' in no_notes.text
    assert "Rejected" not in no_notes.text.split("<h3>The change")[0]
    admin1.get(request_url)
    cancelled = admin1.follow(admin1.post(f"{request_url}/cancel"))
    assert "Cancelled" in cancelled.text and 'id="complete"' not in cancelled.text
    admin1.get(f"/admin/access-policies/{policy_id}/delete")
    deleted = admin1.post(
        f"/admin/access-policies/{policy_id}/delete", {"justification": "No longer needed"}
    )
    assert deleted.status_code == 303 and deleted.headers["location"].startswith("/admin/requests/")
    assert "Delete" in admin1.follow(deleted).text


def test_adding_an_app_under_a_policy_ends_with_submit_for_approval(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant, admin2_upn, approvers = approver_tenant(tenants)
    admin1 = signed_in(app, tenant.admin.upn)
    form = {
        "odataType": "win32LobApp",
        "f_displayName": "Contoso VPN",
        "f_publisher": "Contoso",
        "f_fileName": "setup.exe",
        "f_installCommandLine": "setup.exe /quiet",
        "f_uninstallCommandLine": "setup.exe /uninstall /quiet",
        "f_roleScopeTagIds": "0",
    }
    admin1.get("/admin/apps/new?type=win32LobApp")
    before = admin1.post("/admin/apps/new", {**form, "step": "review"})
    assert '<h2 id="last-step">Review + create</h2>' in before.text
    assert "justification" not in before.text

    windows = "windows10AndLater,windows81AndLater,windows10X"
    protect(tenant, admin2_upn, approvers, "Protect Windows apps", "app", windows)

    after = admin1.post("/admin/apps/new", {**form, "step": "review"})
    assert "Review + submit for approval" in after.text and "Business justification" in after.text
    # The page says what is missing in its own words (the gate would refuse it too).
    no_reason = admin1.post("/admin/apps/new", {**form, "step": "submit"})
    assert "A business justification is required (1 to 1024 characters)." in no_reason.text
    too_long = admin1.post(
        "/admin/apps/new", {**form, "step": "submit", "justification": "x" * 1025}
    )
    assert "The business justification has 1025 characters; at most 1024" in too_long.text
    submitted = admin1.post(
        "/admin/apps/new", {**form, "step": "submit", "justification": "New VPN client"}
    )
    assert submitted.headers["location"].startswith("/admin/requests/")
    assert tenant.ok("GET", "/beta/deviceAppManagement/mobileApps")["value"] == []


def test_device_wipe_single_and_bulk_is_submitted_for_approval(
    tenants: TenantFactory, app: FastAPI
) -> None:
    tenant, admin2_upn, approvers = approver_tenant(tenants)
    devices = [
        tenant.ok(
            "POST",
            "/beta/deviceManagement/managedDevices",
            json={"deviceName": unique("PC"), "operatingSystem": "Windows"},
        )["id"]
        for _ in range(3)
    ]
    protect(tenant, admin2_upn, approvers, "Protect wipes", "deviceWipe")

    web = signed_in(app, tenant.admin.upn)
    web.get("/admin/devices")
    bulk = web.client.post(
        "/admin/devices/action",
        data={"csrf_token": web.csrf, "action": "wipe", "device_id": devices[:2]},
    )
    assert "Wipe 2 devices" in bulk.text and "Review + submit for approval" in bulk.text
    submitted = web.client.post(
        "/admin/devices/action",
        data={
            "csrf_token": web.csrf,
            "action": "wipe",
            "device_id": devices[:2],
            "step": "submit",
            "justification": "Stolen laptops",
        },
    )
    assert submitted.headers["location"].startswith("/admin/requests/")
    single = web.post("/admin/devices/action", {"action": "wipe", "device_id": devices[2]})
    assert "Wipe 1 device" in single.text and "Review + submit for approval" in single.text
    # Retire and delete are not protected here: they apply at once.
    retire = web.post(
        "/admin/devices/action", {"action": "retire", "device_id": devices[2], "step": "submit"}
    )
    assert retire.status_code == 303 and retire.headers["location"] == "/admin/devices?notice=done"
    device = tenant.ok("GET", f"/beta/deviceManagement/managedDevices/{devices[2]}")
    assert device["managementState"] == "retirePending"
    confirm = web.get(f"/admin/devices/{devices[2]}/delete")
    assert "Review + submit for approval" not in confirm.text and "Delete" in confirm.text
    deleted = web.post(f"/admin/devices/{devices[2]}/delete")
    assert deleted.headers["location"] == "/admin/devices?notice=deleted"
    gone = tenant.call("GET", f"/beta/deviceManagement/managedDevices/{devices[2]}")
    assert gone.status_code == 404
