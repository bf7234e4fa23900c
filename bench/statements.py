"""Statements and CPU per lifecycle, in one process: what each request of a lifecycle costs.

    .venv/bin/python bench/statements.py [--database sqlite|postgresql://...] [-n 100] [--rounds 5]
                                         [--sql]

The app runs in this process, on a fresh database with the tenant of bench/lifecycle.py (set up
through Starlette's TestClient); the lifecycles are sent straight through ASGI in the app's event
loop (no client library, no network). It walks one lifecycle and prints, per request (submit,
approve, replay), the statements SQLAlchemy sent (counted with its cursor events; --sql prints
them), then times rounds of -n more and prints this process's CPU per lifecycle (the minimum
over rounds: on a shared machine contention only ever adds). Then the same for an unprotected
write against a read of the same object: PATCH of a device category's description (no policy
covers it) and GET of it, 3 x -n each in alternating rounds, and the ratio of the two. To see
where the time goes: `py-spy record -o FILE -- .venv/bin/python bench/statements.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).parent))
from common import database
from lifecycle import APPS, JUSTIFY, REQUESTS, app_body, set_up

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.store.migrate import upgrade

URL = "http://testserver"
CATEGORIES = "/beta/deviceManagement/deviceCategories"


async def asgi_post(app: Any, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """POST straight to the ASGI app (no client library): returns (status, headers)."""
    return await asgi_request(app, "POST", path, headers, body)


async def asgi_request(
    app: Any, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
) -> Any:
    """One request straight to the ASGI app (no client library): returns (status, headers)."""
    raw = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + ([] if body is None else [(b"content-length", str(len(raw)).encode())]),
    }
    sent = False
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}

    await app(scope, receive, send)
    return answer["status"], answer["headers"]


async def asgi_lifecycles(
    app: Any,
    admin1: dict[str, str],
    admin2: dict[str, str],
    count: int,
    steps: list[str] | None = None,
) -> None:
    """`count` lifecycles; each step's name goes to `steps` (when given) before it runs."""
    marks = steps if steps is not None else []
    for _ in range(count):
        body = app_body()
        marks.append("submit")
        status, headers = await asgi_post(app, APPS, {**admin1, **JUSTIFY}, body)
        assert status == 403, status
        code = headers["x-msft-approval-code"]
        marks.append("approve")
        approve = f"{REQUESTS}/{code}/approve"
        status, _ = await asgi_post(app, approve, admin2, {"justification": "ok"})
        assert status == 200, status
        marks.append("replay")
        status, _ = await asgi_post(app, APPS, {**admin1, "x-msft-approval-code": code}, body)
        assert status == 201, status


async def asgi_unprotected(
    app: Any, admin: dict[str, str], path: str, method: str, count: int, steps: list[str]
) -> None:
    """`count` PATCHes of the object's description (no policy covers it: 204) or GETs of it."""
    expected = 204 if method == "PATCH" else 200
    for number in range(count):
        steps.append(method)
        body = {"description": f"Edit {number}"} if method == "PATCH" else None
        status, _ = await asgi_request(app, method, path, admin, body)
        assert status == expected, status


def cpu_ms(call: Any, *args: Any) -> float:
    started = time.process_time()
    call(*args)
    return (time.process_time() - started) * 1000


def print_statements(statements: list[tuple[str, str]], steps: tuple[str, ...], sql: bool) -> None:
    for step in steps:
        mine = [text for name, text in statements if name == step]
        print(f"  {step:<8} {len(mine):3d} statements")
        if sql:
            for text in mine:
                print("     ", " ".join(text.split())[:160])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument("-n", type=int, default=100, help="lifecycles per round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (the minimum counts)")
    parser.add_argument("--sql", action="store_true", help="print each statement")
    args = parser.parse_args()
    with database(args.database) as database_url:
        upgrade(database_url)
        app = create_app(Settings(database_url=database_url))
        with TestClient(app, base_url=URL) as client:
            admin1, admin2 = set_up(URL, database_url, http=client)
            client.headers.pop("Authorization", None)
            category = client.post(
                CATEGORIES, headers=admin1, json={"displayName": "Bench category"}
            )
            assert category.status_code == 201, category.text
            unprotected = f"{CATEGORIES}/{category.json()['id']}"
            steps: list[str] = []
            statements: list[tuple[str, str]] = []

            def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
                statements.append((steps[-1] if steps else "-", sql))

            engine = app.state.ctx.db.engine
            portal = client.portal
            assert portal is not None
            # Warm caches first: compiled statements, the snapshot, the callers.
            portal.call(asgi_lifecycles, app, admin1, admin2, 3)
            for method in ("PATCH", "GET"):
                portal.call(asgi_unprotected, app, admin1, unprotected, method, 3, [])
            event.listen(engine, "before_cursor_execute", count)
            portal.call(asgi_lifecycles, app, admin1, admin2, 1, steps)
            for method in ("PATCH", "GET"):
                portal.call(asgi_unprotected, app, admin1, unprotected, method, 1, steps)
            event.remove(engine, "before_cursor_execute", count)
            print_statements(statements, ("submit", "approve", "replay"), args.sql)
            lifecycle = sum(name not in ("PATCH", "GET") for name, _ in statements)
            print(f"  lifecycle {lifecycle:3d} statements")
            print_statements(statements, ("PATCH", "GET"), args.sql)
            rounds = [
                cpu_ms(portal.call, asgi_lifecycles, app, admin1, admin2, args.n) / args.n
                for _ in range(args.rounds)
            ]
            print(
                f"  CPU per lifecycle in this process (ASGI, no client), {args.rounds} rounds of "
                f"{args.n}: min {min(rounds):.2f} ms, median {statistics.median(rounds):.2f} ms"
            )
            # An unprotected write against a read of the same object, in alternating rounds.
            each = args.n * 3
            per: dict[str, list[float]] = {"PATCH": [], "GET": []}
            for _ in range(args.rounds):
                for method, spent in per.items():
                    run: tuple[Any, ...] = (app, admin1, unprotected, method, each, [])
                    spent.append(cpu_ms(portal.call, asgi_unprotected, *run) / each)
            for method, spent in per.items():
                print(
                    f"  CPU per {method:<5} of a device category (no policy covers it), "
                    f"{args.rounds} rounds of {each}: min {min(spent):.2f} ms, "
                    f"median {statistics.median(spent):.2f} ms"
                )
            print(f"  PATCH / GET (minimums): {min(per['PATCH']) / min(per['GET']):.2f}x")
        app.state.ctx.db.dispose()


if __name__ == "__main__":
    main()
