"""Full approval lifecycles driven by wrk (C + Lua), against the framework's own ceiling.

    .venv/bin/python bench/lifecycle_wrk.py [--database sqlite|postgresql://...] [-n 1600]
                                            [--bare-n 16000] [-t 16] [--workers 2] [--profile DIR]

A Python load generator (bench/lifecycle.py, httpx) spends about as much CPU per request as the
server, and on two cores it takes the server's. wrk is C: here each of its threads holds one
connection and walks whole lifecycles (bench/lifecycle.lua: submit by handshake with
x-msft-approval-justification, read x-msft-approval-code, approve with the second admin's token,
replay with x-msft-approval-code).

In the same run, a bare FastAPI app (bench/bare_app.py: one sync POST with a Pydantic body, the
same Uvicorn settings and worker count) is driven the same way with three POSTs per "lifecycle".
For each: lifecycles/s, p50/p99 of a lifecycle (timed in Lua), and the servers' own CPU per
lifecycle (utime + stime of the server processes and their children, from /proc, before and
after), then the ratios. At the end the audit chain is verified, every lifecycle must have
completed its request, and the server log must name no deadlock, server error or traceback
(`--workers 4` runs four server processes: the scale-out check).

wrk is not installed by this script: `apt-get install wrk` (Debian's package), or `make
bench-tools`. With --profile DIR, py-spy (a dev dependency) records Countersign's
server processes during the measured run into DIR (collapsed stacks and a flame graph; the CPU
figures of such a run include py-spy's own disturbance of the two cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
from common import (
    countersign,
    database,
    free_port,
    log_troubles,
    percentile,
    running,
    server_process,
)
from lifecycle import set_up

from countersign.store import tables as t
from countersign.store.db import make_engine

HERE = Path(__file__).parent
SCRIPT = HERE / "lifecycle.lua"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc/PID/task/TID/children."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except FileNotFoundError:
                continue
            pending.extend(int(child) for child in children)
    return found


def cpu_ms(pid: int) -> float:
    """utime + stime of a server process and all its descendants, with the reaped children's
    (cutime + cstime), in milliseconds."""
    ticks = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name; fields[0] is field 3
        ticks += sum(int(value) for value in fields[11:15])  # fields 14-17
    return ticks * 1000 / CLOCK_TICKS


@dataclass
class Figures:
    completed: int
    failed: int
    seconds: float
    latencies_ms: list[float]
    cpu_ms: float
    failures: list[str]
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_lifecycle(self) -> float:
        return self.cpu_ms / max(1, self.completed)


def drive(
    url: str,
    server_pid: int,
    mode: str,
    per_thread: int,
    threads: int,
    max_seconds: int,
    env: dict[str, str],
) -> Figures:
    """One wrk run: `threads` connections, each running `per_thread` lifecycles (bounded by
    `max_seconds` too)."""
    scratch = Path(tempfile.mkdtemp(prefix="countersign-wrk-"))
    result = scratch / "result.txt"
    wrk_env = {
        **os.environ,
        **env,
        "CS_MODE": mode,
        "CS_PER_THREAD": str(per_thread),
        "CS_RESULT": str(result),
    }
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{threads}",
        f"-d{max_seconds}s",
        "--timeout",
        "60s",
        "-s",
        str(SCRIPT),
        url,
    ]
    before = cpu_ms(server_pid)
    process = subprocess.Popen(command, env=wrk_env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + max_seconds + 5
    # wrk runs until -d even when every thread stopped; each thread leaves a marker when done.
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(scratch.glob("result.txt.thread*"))) >= threads:
            break
        time.sleep(0.05)
    after = cpu_ms(server_pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # wrk then stops and runs the script's done()
    process.wait(timeout=30)
    return parse(result.read_text(), after - before)


def parse(text: str, cpu: float) -> Figures:
    completed = failed = socket_errors = 0
    latencies: list[float] = []
    failures: list[str] = []
    starts, ends = [], []
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "thread":
            done, lost = rest.split()
            completed, failed = completed + int(done), failed + int(lost)
        elif key == "window":
            first, last = (float(value) for value in rest.split())
            if first >= 0:
                starts.append(first)
                ends.append(last)
        elif key == "latencies":
            latencies.extend(float(value) for value in rest.split(",") if value)
        elif key == "failures":
            failures.append(rest)
        elif key == "socket_errors":
            socket_errors = int(rest)
    seconds = (max(ends) - min(starts)) / 1000 if starts else 0.0
    return Figures(completed, failed, seconds, latencies, cpu, failures, socket_errors)


def report(name: str, figures: Figures) -> None:
    lat = figures.latencies_ms or [0.0]
    print(
        f"  {name:<12} {figures.rate:7.1f} lifecycles/s  p50 {percentile(lat, 0.5):7.1f} ms  "
        f"p99 {percentile(lat, 0.99):7.1f} ms  server CPU {figures.cpu_per_lifecycle:6.2f} ms "
        f"per lifecycle  ({figures.completed} completed, {figures.failed} failed"
        f"{f', {figures.socket_errors} socket errors' if figures.socket_errors else ''})"
    )
    for failure in figures.failures:
        print(f"    failures: {failure}")


def completed_requests(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            count = connection.execute(
                select(func.count())
                .select_from(t.ApprovalRequest)
                .where(t.ApprovalRequest.status == "completed")
            ).scalar_one()
    finally:
        engine.dispose()
    return int(count)


def profiler(pid: int, directory: Path, seconds: int) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        sys.exit("--profile needs py-spy (a dev dependency): .venv/bin/pip install -e '.[dev]'")
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        "200",
        "--duration",
        str(seconds),
        "--format",
        "raw",
        "--output",
        str(directory / "countersign.folded"),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL server URL")
    parser.add_argument("-n", type=int, default=1600, help="lifecycles (split over the threads)")
    parser.add_argument(
        "--bare-n", type=int, default=16000, help="bare lifecycles (it is ~20x faster)"
    )
    parser.add_argument("-t", type=int, default=16, help="wrk threads, one connection each")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--max-seconds", type=int, default=300, help="bound of each wrk run")
    parser.add_argument("--skip-bare", action="store_true", help="only Countersign")
    parser.add_argument("--profile", type=Path, help="record py-spy stacks into this directory")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(
            "wrk is not installed: apt-get install wrk (Debian's package), or make bench-tools"
        )
    per_thread = max(1, args.n // args.t)
    total = per_thread * args.t
    kind = "sqlite" if args.database == "sqlite" else "postgresql"
    print(
        f"lifecycle bench (wrk): {total} lifecycles on {kind}, serve --workers {args.workers}, "
        f"wrk -t{args.t} -c{args.t}; load average {os.getloadavg()[0]:.2f}, "
        f"{time.strftime('%H:%M UTC', time.gmtime())}",
        flush=True,
    )
    with database(args.database) as database_url:
        with server_process(database_url, args.workers) as (url, process):
            admin1, admin2 = set_up(url, database_url)
            tokens = {"CS_ADMIN1": admin1["Authorization"], "CS_ADMIN2": admin2["Authorization"]}
            warm = drive(url, process.pid, "countersign", 3, args.t, args.max_seconds, tokens)
            spy = None
            if args.profile:
                spy = profiler(process.pid, args.profile, args.max_seconds)
                time.sleep(1)  # py-spy attaches
            ours = drive(
                url, process.pid, "countersign", per_thread, args.t, args.max_seconds, tokens
            )
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes what it has
                spy.wait(timeout=60)
            troubles = log_troubles(process.log_path)  # type: ignore[attr-defined]
        verdict = countersign(database_url, "audit", "verify").strip()
        completed = completed_requests(database_url)
    expected = 1 + warm.completed + ours.completed  # the policy's own request, the warm-up
    bare = None
    if not args.skip_bare:
        port = free_port()
        log_path = Path(tempfile.mkdtemp(prefix="countersign-bare-")) / "server.log"
        command = [
            sys.executable,
            str(HERE / "bare_app.py"),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        with running(command, dict(os.environ), port, log_path, cwd=HERE) as (bare_url, bare_proc):
            drive(bare_url, bare_proc.pid, "bare", 3, args.t, args.max_seconds, {})
            bare_per_thread = max(1, args.bare_n // args.t)
            bare = drive(
                bare_url, bare_proc.pid, "bare", bare_per_thread, args.t, args.max_seconds, {}
            )
    report("countersign", ours)
    if bare is not None:
        report("bare (3 POST)", bare)
        cpu_ratio = ours.cpu_per_lifecycle / bare.cpu_per_lifecycle
        print(
            f"  ratios: server CPU per lifecycle {cpu_ratio:.1f}x"
            f" the bare app's; rate {ours.rate / bare.rate:.3f}x the bare app's"
            f" ({bare.rate / max(ours.rate, 1e-9):.1f}x slower)"
        )
    print(f"  {verdict}; completed requests {completed} of {expected} expected")
    print(f"  server log: {len(troubles)} lines naming a deadlock, a 5xx or a traceback")
    for line in troubles[:5]:
        print(f"    {line[:200]}")
    print(f"  load average after: {os.getloadavg()[0]:.2f}")
    if completed != expected or ours.failed or troubles or (bare is not None and bare.failed):
        sys.exit("some lifecycles did not complete")


if __name__ == "__main__":
    main()
