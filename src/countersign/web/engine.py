"""The admin center's calls into the approval engine (services/gate.py and the use cases).

Only translation lives here: every decision (is it protected, may this person approve, may the
request move) is the services' own, so the browser obeys exactly the rules the API obeys.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict
from countersign.domain.request import Status
from countersign.services import gate, queries
from countersign.services import request_json as requests
from countersign.services.changes import Change, Result
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.web.session import WebSession


def encode_justification(text: str) -> str:
    """The admin center sends a justification as the API's header carries it: base64 text."""
    return base64.b64encode(text.encode()).decode()


def needs_approval(db: Database, caller: Caller, change: Change, now: datetime) -> bool:
    """Whether the last step reads "Review + submit for approval" (the gate decides)."""
    return gate.needs_approval(db, caller, change, now)


def run(web: WebSession, change: Change, justification: str | None) -> Result | str:
    """Run a change through the one gate. Returns the result, or the id of the approval
    request the change became."""
    headers = gate.ApprovalHeaders(
        justification=encode_justification(justification) if justification else None
    )
    try:
        outcome = gate.execute(web.ctx.db, web.caller, change, headers, web.now)
    except Conflict as conflict:
        if conflict.reason and conflict.reason.startswith(LOCKED_BY):
            raise _already_requested(web, conflict, conflict.reason[len(LOCKED_BY) :]) from None
        raise
    return outcome.request_id if isinstance(outcome, gate.Submitted) else outcome.result


LOCKED_BY = "lockedBy:"


class LinkedMessage(str):
    """An error message with a link the page shows beside it (templates/_notice.html)."""

    link: str


def _already_requested(web: WebSession, conflict: Conflict, request_id: str) -> Conflict:
    """The duplicate-request error in words: which object, which open request, and a link."""
    with web.ctx.db.read() as session:
        row = session.get(t.ApprovalRequest, request_id)
        if row is None or row.tenant_id != web.caller.tenant_id:
            return conflict
        summary = (row.display_payload or {}).get("summary") or {}
        title = summary.get("title") or f"{row.payload_operation} {row.payload_name}"
        name = row.payload_name
        status = requests.effective_status(row, web.now)
    words = "waiting for approval" if status == Status.NEEDS_APPROVAL else "approved, not completed"
    message = LinkedMessage(
        f"{name} already has an open approval request ({title}; {words}, requested by "
        f"{row.requestor_name}). Another change to it can be submitted once that request is "
        "completed, rejected, cancelled or expired."
    )
    message.link = f"/admin/requests/{request_id}"
    return Conflict(message, reason=conflict.reason)


def request_json(
    row: t.ApprovalRequest, now: datetime, decisions: list[t.ApprovalDecision] | None = None
) -> dict[str, Any]:
    return requests.request_json(row, now, decisions)


def effective_status(row: t.ApprovalRequest, now: datetime) -> str:
    """Status as the API reports it (an active request past its expiry reads `expired`)."""
    return requests.effective_status(row, now)


def blocker(session: Session, web: WebSession, row: t.ApprovalRequest) -> str | None:
    """None when the signed-in administrator may approve or reject, else why not, in words."""
    refusal = queries.approval_blocker(session, web.ctx.db, web.caller, row)
    return None if refusal is None else refusal.explanation


def waiting_rows(session: Session, web: WebSession, limit: int = 500) -> list[t.ApprovalRequest]:
    """Requests that need approval and that this administrator may approve (newest first)."""
    return queries.waiting_for(session, web.ctx.db, web.caller, web.now, limit=limit)


def waiting_count(web: WebSession) -> int:
    """The count in the header: requests waiting for me."""
    with web.ctx.db.read() as session:
        return queries.waiting_count(session, web.ctx.db, web.caller, web.now)
