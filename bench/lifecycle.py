"""Full approval lifecycles over HTTP: submit by handshake -> approve -> replay to complete.

    .venv/bin/python bench/lifecycle.py [--database sqlite|postgresql://...] [-n 2000] [-c 16]
                                        [--workers 2]

Starts `countersign serve --workers N` on a fresh database, sets up a tenant whose apps are
protected by an access policy, then runs N lifecycles with C concurrent clients (asyncio +
httpx) and prints lifecycles/s with p50 and p99 of a whole lifecycle (three HTTP calls).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import PASSWORD, countersign, database, describe, server, token

APPS = "/beta/deviceAppManagement/mobileApps"
REQUESTS = "/beta/deviceManagement/operationApprovalRequests"
JUSTIFY = {"x-msft-approval-justification": base64.b64encode(b"Benchmark change").decode()}


def set_up(url: str, database_url: str, http: Any = httpx) -> tuple[dict[str, str], dict[str, str]]:
    """A tenant whose apps are protected by an access policy, its two admins' headers. `http`
    posts (httpx, or an in-process client whose base URL is `url`)."""
    domain = f"bench{uuid.uuid4().hex[:6]}.example"
    created = json.loads(
        countersign(
            database_url,
            "tenant",
            "create",
            "--name",
            "Bench",
            "--admin-upn",
            f"admin1@{domain}",
            "--admin-password",
            PASSWORD,
            "--json",
        )
    )
    admin1 = token(url, created["userPrincipalName"], http=http)
    client = httpx.Client(base_url=url, headers=admin1, timeout=60) if http is httpx else http
    client.headers.update(admin1)
    admin2 = client.post(
        "/beta/users",
        json={
            "displayName": "Administrator 2",
            "userPrincipalName": f"admin2@{domain}",
            "passwordProfile": {"password": PASSWORD},
        },
    ).json()
    group = client.post(
        "/beta/groups", json={"displayName": "Intune Change Approvers", "securityEnabled": True}
    ).json()
    client.post(f"/beta/groups/{group['id']}/members/$ref", json={"@odata.id": admin2["id"]})
    roles = client.get(
        "/beta/deviceManagement/roleDefinitions",
        params={"$filter": "displayName eq 'Intune Administrator'"},
    ).json()
    client.post(
        "/beta/deviceManagement/roleAssignments",
        json={
            "displayName": "Approvers",
            "members": [group["id"]],
            "roleScopeTagIds": ["0"],
            "roleDefinitionId": roles["value"][0]["id"],
        },
    ).raise_for_status()
    second = token(url, f"admin2@{domain}", http=http)
    submitted = client.post(
        "/beta/deviceManagement/operationApprovalPolicies",
        headers=JUSTIFY,
        json={
            "displayName": "Protect apps",
            "policyType": "app",
            "policyPlatform": "notApplicable",
            "approverGroupIds": [group["id"]],
        },
    )
    request_id = submitted.headers["x-msft-approval-code"]
    http.post(f"{url}{REQUESTS}/{request_id}/approve", headers=second, json={}).raise_for_status()
    client.post(f"{REQUESTS}/{request_id}/complete").raise_for_status()
    return admin1, second


def app_body() -> dict[str, Any]:
    """A new protected object: a web app, named afresh."""
    return {
        "@odata.type": "#microsoft.graph.webApp",
        "displayName": f"App {uuid.uuid4().hex[:8]}",
        "publisher": "Bench",
        "appUrl": "https://example.com",
    }


async def lifecycle(
    client: httpx.AsyncClient, admin1: dict[str, str], admin2: dict[str, str]
) -> None:
    body = app_body()
    submitted = await client.post(APPS, json=body, headers={**admin1, **JUSTIFY})
    assert submitted.status_code == 403, submitted.text
    code = submitted.headers["x-msft-approval-code"]
    approved = await client.post(
        f"{REQUESTS}/{code}/approve", headers=admin2, json={"justification": "ok"}
    )
    assert approved.status_code == 200, approved.text
    applied = await client.post(APPS, json=body, headers={**admin1, "x-msft-approval-code": code})
    assert applied.status_code == 201, applied.text


async def run(
    url: str, admin1: dict[str, str], admin2: dict[str, str], total: int, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await lifecycle(client, admin1, admin2)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument("-n", type=int, default=2000, help="lifecycles")
    parser.add_argument("-c", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    args = parser.parse_args()
    with database(args.database) as database_url, server(database_url, args.workers) as url:
        admin1, admin2 = set_up(url, database_url)
        asyncio.run(run(url, admin1, admin2, min(50, args.n), args.c))  # warm up
        elapsed, latencies = asyncio.run(run(url, admin1, admin2, args.n, args.c))
    kind = "sqlite" if args.database == "sqlite" else "postgresql"
    print(
        f"lifecycle bench: {args.n} lifecycles on {kind}, serve --workers {args.workers}, "
        f"{args.c} concurrent clients"
    )
    print(f"  {args.n / elapsed:.0f} lifecycles/s ({3 * args.n / elapsed:.0f} HTTP requests/s)")
    print(f"  per lifecycle: {describe(latencies)}")


if __name__ == "__main__":
    main()
