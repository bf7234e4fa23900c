"""Writes that race: concurrent creations answer 201 or a clean 409, never a 500."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from tests.factories import TenantFactory, unique

DM = "/beta/deviceManagement"


def _race(count: int, call: Any) -> list[int]:
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        status = call(index).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_concurrent_scope_tags_get_distinct_ids(tenants: TenantFactory) -> None:
    tenant = tenants()
    statuses = _race(
        6,
        lambda i: tenant.call(
            "POST", f"{DM}/roleScopeTags", json={"displayName": unique(f"tag{i}")}
        ),
    )
    assert statuses == [201] * 6
    ids = [t["id"] for t in tenant.ok("GET", f"{DM}/roleScopeTags")["value"]]
    assert len(ids) == len(set(ids)) == 7


def test_concurrent_users_with_one_upn_conflict_cleanly(tenants: TenantFactory) -> None:
    tenant = tenants()
    upn = f"{unique('twin')}@{tenant.domain}"
    statuses = _race(
        6,
        lambda i: tenant.call(
            "POST", "/beta/users", json={"displayName": f"twin {i}", "userPrincipalName": upn}
        ),
    )
    assert Counter(statuses) == Counter({201: 1, 409: 5}), statuses


def test_concurrent_member_adds_conflict_cleanly(tenants: TenantFactory) -> None:
    tenant = tenants()
    group = tenant.group(unique("g"))
    ref = {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{tenant.admin.id}"}
    statuses = _race(
        6, lambda i: tenant.call("POST", f"/beta/groups/{group}/members/$ref", json=ref)
    )
    assert Counter(statuses) == Counter({204: 1, 409: 5}), statuses
