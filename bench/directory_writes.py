"""What the four-eyes guard costs a directory write: the same unprotected directory writes
(a group renamed, a member added and removed) timed in one process with no access policy (no
guard) and with one active (each write applied on a savepoint, both directory snapshots compared
for every principal), alternating, in one run. Prints ms per write and the ratio.

    .venv/bin/python bench/directory_writes.py [--database postgresql://...] [--users 200] [-n 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import database

from countersign.domain.actors import Caller
from countersign.services import gate
from countersign.services.catalog import run_unprotected
from countersign.services.changes import ACTION, CREATE, UPDATE, Change
from countersign.services.demo import caller_for
from countersign.services.tenants import create_tenant
from countersign.store.db import Database
from countersign.store.migrate import upgrade

PASSWORD = "Bench-Passw0rd!"


def _tenant(db: Database, users: int, with_policy: bool) -> tuple[Caller, str, str]:
    """A tenant with `users` accounts in an approver group; returns the admin, a plain group
    and a user outside every group."""
    now = datetime.now(UTC)
    domain = f"{uuid.uuid4().hex[:8]}.example"
    with db.write() as session:
        created = create_tenant(session, domain, f"admin@{domain}", PASSWORD)

    def run(change: Change) -> str:
        admin = caller_for(db, created.tenant_id, created.admin_id)  # fresh: the directory moves
        with db.write() as session:
            target = run_unprotected(session, admin, change, now).target_id
        assert target
        return target

    approvers = run(Change("groups", CREATE, body={"displayName": "Approvers"}))
    for index in range(users):
        body = {"displayName": f"u{index}", "userPrincipalName": f"u{index}@{domain}"}
        user = run(Change("users", CREATE, body=body))
        run(Change("groups", ACTION, approvers, {"@odata.id": user}, "addMember"))
    role = created.roles["Multi Admin Approval Approver"]
    assignment = {"displayName": "Approvers", "members": [approvers], "roleDefinitionId": role}
    run(Change("roleAssignments", CREATE, body=assignment))
    if with_policy:
        policy = {
            "displayName": "Protect apps",
            "policyType": "app",
            "policyPlatform": "notApplicable",
            "approverGroupIds": [approvers],
        }
        run(Change("operationApprovalPolicies", CREATE, body=policy))
    plain = run(Change("groups", CREATE, body={"displayName": "Plain"}))
    loose = run(
        Change("users", CREATE, body={"displayName": "x", "userPrincipalName": f"x@{domain}"})
    )
    return caller_for(db, created.tenant_id, created.admin_id), plain, loose


def _writes(db: Database, admin: Caller, group: str, user: str, count: int) -> list[float]:
    timings = []
    headers = gate.ApprovalHeaders()
    for index in range(count):
        changes = [
            Change("groups", UPDATE, group, {"displayName": f"Plain {index}"}),
            Change("groups", ACTION, group, {"@odata.id": user}, "addMember"),
            Change("groups", ACTION, group, {"@odata.id": user}, "removeMember"),
        ]
        for change in changes:
            start = time.perf_counter()
            gate.execute(db, admin, change, headers, datetime.now(UTC))
            timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("-n", type=int, default=100, help="rounds of three writes each")
    args = parser.parse_args()
    with database(args.database) as url:
        upgrade(url)
        db = Database(url)
        plain = _tenant(db, args.users, with_policy=False)
        guarded = _tenant(db, args.users, with_policy=True)
        results: dict[str, list[float]] = {"no policy": [], "policy active": []}
        for _ in range(4):  # alternate, so the machine's speed moves both alike
            results["no policy"] += _writes(db, *plain, args.n // 4)
            results["policy active"] += _writes(db, *guarded, args.n // 4)
        db.dispose()
    for name, timings in results.items():
        print(
            f"{name:>14}: {len(timings)} directory writes, "
            f"p50 {statistics.median(timings) * 1000:.1f} ms, "
            f"mean {statistics.fmean(timings) * 1000:.1f} ms"
        )
    ratio = statistics.median(results["policy active"]) / statistics.median(results["no policy"])
    print(f"guard cost: {ratio:.2f}x the median unguarded directory write ({args.users} users)")


if __name__ == "__main__":
    main()
