"""Idempotent submission (services/submissions.py): a protected write retried with the same
`client-request-id` or `Idempotency-Key` answers with the request the first one made."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from countersign.store import tables as t
from countersign.store.db import Database
from tests.factories import TenantFactory, count_rows
from tests.maa import REQUESTS, b64, seed

APPS = "/beta/deviceAppManagement/mobileApps"
APP = {
    "@odata.type": "#microsoft.graph.win32LobApp",
    "displayName": "Retried app",
    "publisher": "Contoso",
    "fileName": "setup.intunewin",
    "installCommandLine": "setup.exe /quiet",
    "uninstallCommandLine": "setup.exe /uninstall",
}


def _requests_for(db: Database, tenant_id: str, name: str) -> int:
    return count_rows(
        db,
        t.ApprovalRequest,
        t.ApprovalRequest.tenant_id == tenant_id,
        t.ApprovalRequest.payload_name == name,
    )


def test_ten_concurrent_retries_of_one_submit_make_one_request(
    tenants: TenantFactory, db: Database, live_server: str
) -> None:
    s = seed(tenants)
    s.activate_policy("app", platform="windows10AndLater,windows81AndLater,windows10X")
    name = f"Raced app {uuid.uuid4().hex[:6]}"
    headers = {
        **s.admin1.headers,
        "x-msft-approval-justification": b64("Roll out"),
        "client-request-id": str(uuid.uuid4()),
    }
    barrier = threading.Barrier(10)
    answers: list[Any] = [None] * 10

    def submit(index: int) -> None:
        with httpx.Client(base_url=live_server, timeout=120) as client:
            barrier.wait()
            answers[index] = client.post(APPS, json={**APP, "displayName": name}, headers=headers)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert all(a is not None for a in answers)
    assert [a.status_code for a in answers] == [403] * 10, [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers} == {"ApprovalRequired"}
    codes = {a.headers["x-msft-approval-code"] for a in answers}
    assert len(codes) == 1
    assert _requests_for(db, s.tenant.id, name) == 1
    (request_id,) = codes
    assert s.request(request_id)["status"] == "needsApproval"


def test_a_reused_key_with_another_body_is_a_conflict_naming_the_first_request(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    s.activate_policy("app", platform="windows10AndLater,windows81AndLater,windows10X")
    key = str(uuid.uuid4())
    headers = {"x-msft-approval-justification": b64("Roll out"), "Idempotency-Key": key}
    first = s.tenant.call("POST", APPS, s.admin1, json=APP, headers=headers)
    assert first.status_code == 403, first.text
    request_id = first.headers["x-msft-approval-code"]

    again = s.tenant.call("POST", APPS, s.admin1, json=dict(reversed(APP.items())), headers=headers)
    assert again.status_code == 403  # key order is not a different body
    assert again.headers["x-msft-approval-code"] == request_id

    other = s.tenant.call(
        "POST", APPS, s.admin1, json={**APP, "displayName": "Another app"}, headers=headers
    )
    assert other.status_code == 409, other.text
    assert request_id in other.json()["error"]["message"]
    assert "already used" in other.json()["error"]["message"]
    # Another caller's key is its own; without a key every submit is a request of its own.
    mine = s.tenant.call("POST", APPS, s.admin2, json=APP, headers=headers)
    assert mine.status_code == 403 and mine.headers["x-msft-approval-code"] != request_id
    plain = {"x-msft-approval-justification": b64("Roll out")}
    unkeyed = [
        s.tenant.call("POST", APPS, s.admin1, json=APP, headers=plain).headers[
            "x-msft-approval-code"
        ]
        for _ in range(2)
    ]
    assert len(set(unkeyed) | {request_id}) == 3


def test_the_key_is_free_again_after_a_day(tenants: TenantFactory, db: Database) -> None:
    s = seed(tenants)
    s.activate_policy("app", platform="windows10AndLater,windows81AndLater,windows10X")
    headers = {"x-msft-approval-justification": b64("Roll out"), "client-request-id": "retry-1"}
    first = s.tenant.call("POST", APPS, s.admin1, json=APP, headers=headers)
    request_id = first.headers["x-msft-approval-code"]
    with db.write() as session:
        session.execute(
            update(t.SubmissionKey)
            .where(t.SubmissionKey.request_id == request_id)
            .values(created_date_time=datetime.now(UTC) - timedelta(hours=25))
        )
    s.tenant.call("POST", f"{REQUESTS}/cancelMyRequest", s.admin1, json={"id": request_id})
    later = s.tenant.call("POST", APPS, s.admin1, json=APP, headers=headers)
    assert later.status_code == 403
    assert later.headers["x-msft-approval-code"] != request_id


def test_a_retried_password_reset_matches_by_its_password_without_storing_it_fast(
    tenants: TenantFactory, db: Database
) -> None:
    s = seed(tenants)
    s.activate_policy("app", platform="windows10AndLater,windows81AndLater,windows10X")
    path = f"/beta/users/{s.admin2.id}"
    headers = {"x-msft-approval-justification": b64("Locked out"), "client-request-id": "pw-1"}

    def reset(password: str) -> Any:
        body = {"passwordProfile": {"password": password}}
        return s.tenant.call("PATCH", path, s.admin1, json=body, headers=headers)

    first = reset("Correct-Horse-Battery-9")
    assert first.status_code == 403, first.text
    retried = reset("Correct-Horse-Battery-9")
    assert retried.headers["x-msft-approval-code"] == first.headers["x-msft-approval-code"]
    other = reset("Another-Password-1234")
    assert other.status_code == 409 and "already used" in other.json()["error"]["message"]
    with db.read() as session:
        stored = session.scalars(
            select(t.SubmissionKey.fingerprint).where(t.SubmissionKey.key == "pw-1")
        ).all()
    assert len(stored) == 1
