""" "Waiting for me" (services/queries.py waiting_for / waiting_count, one candidate query and
checks in memory) answers exactly what services/queries.py `approval_blocker` answers row by
row, over a tenant with varied requests: one's own, another group's, one whose subject is the
approver, scope tags reached and not, expired, approved, every holder of the permission."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.domain.request import Status
from countersign.services import queries
from countersign.services.request_json import effective_status
from countersign.store import tables as t
from countersign.store.db import Database, current_snapshot
from tests.factories import TenantFactory
from tests.maa import seed


def insert_request(
    db: Database,
    tenant_id: str,
    requestor_id: str,
    approvers: dict[str, Any],
    *,
    status: str = Status.NEEDS_APPROVAL,
    expires_in: timedelta = timedelta(days=1),
    age: timedelta = timedelta(0),
) -> str:
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with db.write() as session:
        session.add(
            t.ApprovalRequest(
                id=request_id,
                tenant_id=tenant_id,
                status=status,
                request_date_time=now - timedelta(days=2) - age,
                expiration_date_time=now + expires_in,
                last_modified_date_time=now,
                requestor_id=requestor_id,
                requestor_type="user",
                requestor_name="someone",
                request_justification="Because",
                policy_type="app",
                policy_ids=[],
                payload_id=str(uuid.uuid4()),
                payload_type="mobileApp",
                payload_name="VPN client",
                payload_operation="Create",
                payload={
                    "change": {},
                    "approvers": {
                        "groupIds": [],
                        "readPermission": None,
                        "objectTagSets": [],
                        "excludedIds": [],
                        **approvers,
                    },
                },
                display_payload={"before": None, "after": {}, "diff": []},
                entity_keys=[],
            )
        )
    return request_id


def caller_for(db: Database, tenant_id: str, user_id: str) -> Caller:
    with db.read() as session:
        snapshot = current_snapshot(session, db, tenant_id)
    return Caller(tenant_id, user_id, "user", "x", None, snapshot.access_for(user_id), snapshot)


def test_waiting_for_me_is_the_per_row_answer(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    tenant = s.tenant
    other_group = tenant.group("Other approvers")
    tenant.assign("Multi Admin Approval Approver", [other_group])
    outsider = tenant.user("outsider", roles=("Intune Administrator",), groups=(other_group,))
    reader = tenant.user("reader", roles=("Read Only Operator",))
    tag = tenant.scope_tag("Finance")
    approvers = s.approvers
    admin1, admin2 = s.admin1.id, s.admin2.id
    read = p.MOBILE_APPS_READ
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (admin1, {"groupIds": [approvers]}, {}),
        (admin2, {"groupIds": [approvers]}, {}),  # admin2's own
        (admin1, {"groupIds": [other_group]}, {}),
        (admin1, {"groupIds": [approvers, other_group]}, {}),
        (admin1, {}, {}),  # every holder of the approval permission
        (admin1, {"groupIds": [approvers], "excludedIds": [admin2]}, {}),
        (admin1, {"groupIds": [approvers], "objectTagSets": [["0"]]}, {}),
        (admin1, {"groupIds": [approvers], "objectTagSets": [[tag]]}, {}),
        (admin1, {"groupIds": [approvers], "objectTagSets": [["0"], [tag]]}, {}),
        (admin1, {"groupIds": [approvers], "readPermission": read}, {}),
        (admin1, {"groupIds": [approvers]}, {"expires_in": -timedelta(seconds=1)}),
        (admin1, {"groupIds": [approvers]}, {"status": Status.APPROVED}),
        (admin1, {"groupIds": [approvers]}, {"status": Status.EXPIRED}),
        (outsider.id, {"groupIds": [approvers]}, {"age": timedelta(hours=1)}),
        (reader.id, {}, {"age": timedelta(hours=2)}),
    ]
    for requestor, frozen, extra in cases:
        insert_request(db, tenant.id, requestor, frozen, **extra)

    now = datetime.now(UTC)
    answers = {}
    for who in (admin1, admin2, outsider.id, reader.id):
        caller = caller_for(db, tenant.id, who)
        with db.read() as session:
            rows = session.scalars(
                select(t.ApprovalRequest)
                .where(t.ApprovalRequest.tenant_id == tenant.id)
                .order_by(t.ApprovalRequest.request_date_time.desc(), t.ApprovalRequest.id)
            ).all()
            expected = [
                row.id
                for row in rows
                if effective_status(row, now) == Status.NEEDS_APPROVAL
                and queries.approval_blocker(session, db, caller, row) is None
            ]
            waiting = [row.id for row in queries.waiting_for(session, db, caller, now)]
            count = queries.waiting_count(session, db, caller, now)
        assert waiting == expected, who
        assert count == len(expected), who
        answers[who] = len(expected)
    # The tenant exercises both answers for each kind of caller that can approve.
    assert answers[admin2] > 0 and answers[admin1] > 0 and answers[outsider.id] > 0
    assert answers[reader.id] == 0
    assert answers[admin2] != answers[admin1]
