"""The framework's own ceiling: a bare FastAPI app with one sync POST taking a Pydantic body.

    .venv/bin/python bench/bare_app.py --port 8001 --workers 2

bench/lifecycle_wrk.py starts it with the Uvicorn settings `countersign serve` uses (same worker
count, proxy headers, no access log line), so the two servers differ only in what Countersign does.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
# As countersign.logs.configure_logging does: no Uvicorn access line per request.
logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class Item(BaseModel):
    displayName: str  # Graph's spelling, as in the lifecycle's bodies
    publisher: str
    appUrl: str


@app.get("/readyz")
def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/items")
def create(item: Item) -> dict[str, str]:
    return {"displayName": item.displayName, "publisher": item.publisher}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # The arguments of `countersign serve` (src/countersign/cli/operator.py), but for the app.
    uvicorn.run(
        "bare_app:app",
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="info",
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
