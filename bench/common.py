"""Shared by the benchmarks: start a server on a fresh database, sign in, print figures."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

PASSWORD = "Bench-Passw0rd!"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh database: 'sqlite' (a temporary file) or a PostgreSQL server URL."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{Path(scratch) / 'bench.db'}"
        return
    name = f"cs_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        kind.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield kind.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def countersign(database_url: str, *args: str) -> str:
    env = {**os.environ, "COUNTERSIGN_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "countersign", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@contextmanager
def server(database_url: str, workers: int) -> Iterator[str]:
    """`countersign serve --workers N` in a subprocess, until the block ends."""
    with server_process(database_url, workers) as (url, _process):
        yield url


@contextmanager
def server_process(
    database_url: str, workers: int
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like `server`, also handing out the process (its CPU time is a benchmark figure)."""
    port = free_port()
    env = {
        **os.environ,
        "COUNTERSIGN_DATABASE_URL": database_url,
        "COUNTERSIGN_LOG_LEVEL": "warning",
    }
    # The server's own log, kept for when a figure looks wrong (its path goes to stderr, and
    # is the process's `log_path` attribute).
    log_path = Path(tempfile.mkdtemp(prefix="countersign-bench-")) / "server.log"
    print(f"server log: {log_path}", file=sys.stderr)
    command = [
        sys.executable,
        "-m",
        "countersign",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with running(command, env, port, log_path) as started:
        yield started


def log_troubles(log_path: Path) -> list[str]:
    """Lines of a server log (JSON lines) that name a deadlock, a server error, a traceback or
    are logged at level error."""
    words = (
        "deadlock",
        "traceback",
        "internal server error",
        "unhandled error",
        '"level": "error"',
    )
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    return [line for line in lines if any(word in line.lower() for word in words)]


@contextmanager
def running(
    command: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a server command until the block ends, once its /readyz answers 200."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        process.log_path = log_path  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited; see {log_path}")
                time.sleep(0.1)
            else:
                raise RuntimeError("the server did not become ready")
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=30)


def token(url: str, upn: str, password: str = PASSWORD, http: Any = httpx) -> dict[str, str]:
    response = http.post(
        url + "/oauth2/token",
        timeout=60,
        data={"grant_type": "password", "username": upn, "password": password},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe(values_ms: list[float]) -> str:
    return (
        f"p50 {percentile(values_ms, 0.50):.1f} ms, p95 {percentile(values_ms, 0.95):.1f} ms, "
        f"p99 {percentile(values_ms, 0.99):.1f} ms, mean {statistics.fmean(values_ms):.1f} ms"
    )
