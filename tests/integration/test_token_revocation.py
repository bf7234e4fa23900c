"""Changing a user's password, sign-in name or enabled state signs out every token and admin
center session issued before, so a taken-over or disabled account's credentials stop working."""

from __future__ import annotations

import time

from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory, count_rows
from tests.integration.test_admin_center import signed_in


def test_a_password_change_revokes_earlier_tokens(tenants: TenantFactory, db: Database) -> None:
    tenant = tenants()
    user = tenant.user(roles=("Read Only Operator",))
    assert tenant.call("GET", "/beta/me", user).status_code == 200
    signed_in(tenant.client.app, user.upn)  # type: ignore[arg-type]
    assert count_rows(db, t.WebSession, t.WebSession.user_id == user.id) == 1
    time.sleep(1.05)  # tokens carry whole seconds; the change must fall in a later second
    tenant.ok(
        "PATCH", f"/beta/users/{user.id}", json={"passwordProfile": {"password": "New-Passw0rd-1"}}
    )
    refused = tenant.call("GET", "/beta/me", user)
    assert refused.status_code == 401
    assert "sign in again" in refused.json()["error"]["message"]
    assert count_rows(db, t.WebSession, t.WebSession.user_id == user.id) == 0
    fresh = tenant.sign_in(user.upn, "New-Passw0rd-1")
    assert tenant.call("GET", "/beta/me", fresh).status_code == 200


def test_a_harmless_change_keeps_tokens(tenants: TenantFactory) -> None:
    tenant = tenants()
    user = tenant.user(roles=("Read Only Operator",))
    time.sleep(1.05)
    tenant.ok("PATCH", f"/beta/users/{user.id}", json={"displayName": "Renamed"})
    assert tenant.call("GET", "/beta/me", user).status_code == 200
