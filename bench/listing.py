""" "All requests" with a million requests in the database: the first and the 500th page of
requests filtered by status, 50 per page, through the API (keyset paging by @odata.nextLink).

    .venv/bin/python bench/listing.py [--database sqlite|postgresql://...] [--rows 1000000]
                                      [--samples 40]

Target: p95 under 50 ms for both pages. Rows are written straight into the table (a million
lifecycles through the API would take hours); the reads go through the real server.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, countersign, database, describe, server, token

from countersign.store import tables as t
from countersign.store.db import Database

REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
STATUSES = ("needsApproval", "approved", "completed", "rejected", "cancelled")


def fill(database_url: str, tenant_id: str, requestor_id: str, rows: int) -> float:
    db = Database(database_url)
    now = datetime.now(UTC)
    started = time.perf_counter()
    batch = 20_000
    for offset in range(0, rows, batch):
        values: list[dict[str, Any]] = []
        for i in range(offset, min(rows, offset + batch)):
            requested = now - timedelta(seconds=rows - i)
            values.append(
                {
                    "id": str(uuid.uuid4()),
                    "tenant_id": tenant_id,
                    "status": STATUSES[i % 5],
                    "request_date_time": requested,
                    "expiration_date_time": requested + timedelta(days=30),
                    "last_modified_date_time": requested,
                    "requestor_id": requestor_id,
                    "requestor_type": "user",
                    "requestor_name": "Administrator 1",
                    "request_justification": "Bench",
                    "policy_type": "app",
                    "policy_ids": [],
                    "approvals_required": 1,
                    "auto_complete": False,
                    "payload_id": None,
                    "payload_type": "mobileApp",
                    "payload_name": f"App {i}",
                    "payload_operation": "Create",
                    "action_name": None,
                    "payload": {"change": {}, "versions": {}, "approvers": {"groupIds": []}},
                    "display_payload": {"before": None, "after": None, "diff": []},
                    "entity_keys": [],
                    "reminder_sent": False,
                }
            )
        with db.write() as session:
            session.execute(insert(t.ApprovalRequest), values)
    if not db.is_sqlite:  # SQLite's statistics are refreshed by `countersign serve` at start
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE approval_requests")
            connection.commit()
    db.dispose()
    return time.perf_counter() - started


def timed(
    client: httpx.Client, url: str, params: dict[str, str] | None = None
) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.get(url, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=40, help="timed fetches of each page")
    args = parser.parse_args()
    with database(args.database) as database_url:
        countersign(database_url, "db", "upgrade")
        domain = f"bench{uuid.uuid4().hex[:6]}.example"
        created = json.loads(
            countersign(
                database_url,
                "tenant",
                "create",
                "--name",
                "Bench",
                "--admin-upn",
                f"admin@{domain}",
                "--admin-password",
                PASSWORD,
                "--json",
            )
        )
        from sqlalchemy import select

        db = Database(database_url)
        with db.read() as session:
            admin_id = session.scalar(
                select(t.User.id).where(t.User.user_principal_name == created["userPrincipalName"])
            )
        db.dispose()
        assert admin_id is not None
        seconds = fill(database_url, created["tenantId"], admin_id, args.rows)
        print(f"listing bench: {args.rows} requests written in {seconds:.0f} s")
        with server(database_url, 1) as url:
            client = httpx.Client(
                base_url=url, headers=token(url, created["userPrincipalName"]), timeout=60
            )
            params = {"$filter": "status eq 'needsApproval'", "$top": "50"}
            first_page: list[float] = []
            for _ in range(args.samples):
                elapsed, body = timed(client, REQUESTS, params)
                first_page.append(elapsed)
            assert len(body["value"]) == 50
            link = body["@odata.nextLink"]
            for _ in range(498):  # pages 2..499
                link = client.get(link).json()["@odata.nextLink"]
            page_500: list[float] = []
            for _ in range(args.samples):
                elapsed, page = timed(client, link)
                page_500.append(elapsed)
            assert len(page["value"]) == 50
            assert all(r["status"] == "needsApproval" for r in page["value"])
    kind = "sqlite" if args.database == "sqlite" else "postgresql"
    print(f"  on {kind}, status eq 'needsApproval', 50 per page, {args.samples} fetches each:")
    print(f"  first page:  {describe(first_page)}")
    print(f"  500th page:  {describe(page_500)}")


if __name__ == "__main__":
    main()
