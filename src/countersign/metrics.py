"""Prometheus metrics (SPEC §9): served at `/metrics` by the server, and by the worker on
`--metrics-port`.

Process metrics (counters, histograms) live in `REGISTRY`; they count what this process saw
(with `serve --workers N` each Uvicorn process has its own, as with any per-process client).
Database metrics (requests by status, outbox depth) are read from the database at each scrape
by `DatabaseCollector`, so every process reports the same, current figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from countersign.domain.request import Status
from countersign.store import tables as t
from countersign.store.db import Database

log = logging.getLogger("countersign.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

TIME_TO_APPROVAL = Histogram(
    "countersign_time_to_approval_seconds",
    "Time from submission to approval of an approval request.",
    buckets=(60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400),
    registry=REGISTRY,
)
DELIVERY_FAILURES = Counter(
    "countersign_notification_delivery_failures",
    "Failed notification delivery attempts (each retry counts).",
    ["channel_kind"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "countersign_http_request_duration_seconds",
    "HTTP request latency, by route template, method and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)


def observe_time_to_approval(seconds: float) -> None:
    """The approval engine calls this when a request reaches `approved`."""
    TIME_TO_APPROVAL.observe(max(seconds, 0.0))


class DatabaseCollector(Collector):
    """Gauges computed from the database at scrape time."""

    def __init__(self, db: Database):
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        requests = GaugeMetricFamily(
            "countersign_approval_requests",
            "Approval requests by stored status (a due request counts as expired once swept).",
            labels=["status"],
        )
        outbox = GaugeMetricFamily(
            "countersign_outbox_messages",
            "Notification outbox messages by status (pending + delivering = the depth).",
            labels=["status"],
        )
        try:
            with self.db.read() as session:
                by_status = session.execute(
                    select(t.ApprovalRequest.status, func.count()).group_by(
                        t.ApprovalRequest.status
                    )
                ).all()
                by_outbox = session.execute(
                    select(t.OutboxMessage.status, func.count()).group_by(t.OutboxMessage.status)
                ).all()
        except Exception:  # a scrape must answer even when the database does not
            log.exception("metrics: database unavailable")
            return
        counts = dict(by_status)
        for known in Status:
            requests.add_metric([known.value], counts.pop(known.value, 0))
        for status, count in counts.items():
            requests.add_metric([status], count)
        yield requests
        depth = dict(by_outbox)
        for status in ("pending", "delivering", "delivered", "dead"):
            outbox.add_metric([status], depth.get(status, 0))
        yield outbox
        yield GaugeMetricFamily(
            "countersign_outbox_depth",
            "Notification messages waiting for delivery (pending or being delivered).",
            value=depth.get("pending", 0) + depth.get("delivering", 0),
        )


def database_registry(db: Database) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(db))
    return registry
