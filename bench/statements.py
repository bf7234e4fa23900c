"""Statements and CPU per lifecycle, in one process: what each request of a lifecycle costs.

    .venv/bin/python bench/statements.py [--database sqlite|postgresql://...] [-n 100] [--rounds 5]
                                         [--sql]

The app runs in this process, on a fresh database with the tenant of bench/lifecycle.py (set up
through Starlette's TestClient); the lifecycles are sent straight through ASGI in the app's event
loop (no client library, no network). It walks one lifecycle and prints, per request (submit,
approve, replay), the statements SQLAlchemy sent (counted with its cursor events; --sql prints
them), then times rounds of -n more and prints this process's CPU per lifecycle (the minimum
over rounds: on a shared machine contention only ever adds). To see where the time goes:
`py-spy record -o FILE -- .venv/bin/python bench/statements.py`.
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


async def asgi_post(app: Any, path: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """POST straight to the ASGI app (no client library): returns (status, headers)."""
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(raw)).encode())],
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
            steps: list[str] = []
            statements: list[tuple[str, str]] = []

            def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
                statements.append((steps[-1] if steps else "-", sql))

            engine = app.state.ctx.db.engine
            assert client.portal is not None
            # Warm caches first: compiled statements, the snapshot, the callers.
            client.portal.call(asgi_lifecycles, app, admin1, admin2, 3)
            event.listen(engine, "before_cursor_execute", count)
            client.portal.call(asgi_lifecycles, app, admin1, admin2, 1, steps)
            event.remove(engine, "before_cursor_execute", count)
            for step in ("submit", "approve", "replay"):
                mine = [sql for name, sql in statements if name == step]
                print(f"  {step:<8} {len(mine):3d} statements")
                if args.sql:
                    for sql in mine:
                        print("     ", " ".join(sql.split())[:160])
            print(f"  lifecycle {len(statements):3d} statements")
            rounds = []
            for _ in range(args.rounds):
                started = time.process_time()
                client.portal.call(asgi_lifecycles, app, admin1, admin2, args.n)
                rounds.append((time.process_time() - started) * 1000 / args.n)
            print(
                f"  CPU per lifecycle in this process (ASGI, no client), {args.rounds} rounds of "
                f"{args.n}: min {min(rounds):.2f} ms, median {statistics.median(rounds):.2f} ms"
            )
        app.state.ctx.db.dispose()


if __name__ == "__main__":
    main()
