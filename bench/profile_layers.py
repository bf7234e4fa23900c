"""Where the servers' CPU goes, by layer, from py-spy's collapsed stacks.

    .venv/bin/python bench/lifecycle_wrk.py --skip-bare --profile /tmp/prof
    .venv/bin/python bench/profile_layers.py /tmp/prof/countersign.folded

py-spy samples threads that are not idle, but counts some waits as work: a thread blocked in
flock (the SQLite writer queue), the thread pool's idle workers and uvloop's own loop (C, so
py-spy sees only its Python caller). Those samples are dropped here. Each remaining sample goes
to the first layer below one of whose patterns a frame of its stack matches, so e.g. a statement
run by audit.record counts as audit, not as SQLAlchemy. C code (the SQLite library, the sqlite3
and psycopg drivers) counts for the Python frame that called it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

WAITS = (
    "_SQLiteWriterQueue.__enter__",
    "Condition.wait",
    "always_pong",
    "Semaphore.acquire",
)
IDLE_LEAF = re.compile(r"select|epoll|poll \(|_run_once|sleep|Runner\.run \(asyncio")
LAYERS = (
    ("audit.record", r"^record \(countersign/services/audit\.py"),
    ("notify/outbox.py", r"countersign/notify/outbox\.py"),
    ("TokenService.verify", r"TokenService\.verify"),
    (
        "current_caller: resolve_caller in its read transaction",
        r"current_caller \(countersign/api/deps\.py",
    ),
    (
        "commit, begin, session set-up (SQLAlchemy + driver)",
        r"SessionTransaction\.commit|Connection\.begin|_connection_for_bind|Session\.close"
        r"|Session\.__exit__",
    ),
    (
        "gate, approvals, changes, resources, rbac (their ORM statements included)",
        r"countersign/services/(gate|approvals|changes|resources|rbac)\.py|countersign/domain/",
    ),
    ("request body parsing", r"json_body|ApprovalHeaders"),
    ("response encoding", r"JSONResponse|Response\.render|Response\.__init__|jsonable_encoder"),
    ("thread-pool hand-off (anyio)", r"anyio/|starlette/concurrency\.py"),
    ("FastAPI/Starlette routing, dependencies, sending", r"fastapi/|starlette/"),
    ("Countersign's middleware", r"countersign/api/(middleware|observability)\.py"),
    ("Uvicorn, httptools, asyncio", r"uvicorn/|asyncio/|uvloop"),
)
COMPILED = tuple((name, re.compile(pattern)) for name, pattern in LAYERS)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folded", help="py-spy record --format raw output")
    args = parser.parse_args()
    layers: Counter[str] = Counter()
    active = waited = with_sqlalchemy = 0
    with open(args.folded) as lines:
        for line in lines:
            stack, _, count_text = line.rstrip().rpartition(" ")
            count = int(count_text)
            frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            if any(wait in frame for frame in frames for wait in WAITS) or (
                frames
                and IDLE_LEAF.search(frames[-1])
                and not any("countersign/" in frame for frame in frames)
            ):
                waited += count
                continue
            active += count
            if any("sqlalchemy/" in frame for frame in frames):
                with_sqlalchemy += count
            for name, pattern in COMPILED:
                if any(pattern.search(frame) for frame in frames):
                    layers[name] += count
                    break
            else:
                layers["other"] += count
    if not active:
        raise SystemExit("no active samples")
    print(f"{active} active samples ({waited} waiting, dropped)")
    print(f"  {100 * with_sqlalchemy / active:5.1f}%  with SQLAlchemy on the stack (any layer)")
    for name, count in layers.most_common():
        print(f"  {100 * count / active:5.1f}%  {name}")


if __name__ == "__main__":
    main()
