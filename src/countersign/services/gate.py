"""The gate every write passes: decides whether a change needs approval, and runs it.

Multi admin approval (access policies, the handshake) plugs in here; see SPEC §4 and §5.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from countersign.domain.actors import Caller
from countersign.services.changes import Change, Result, apply_change, plan_change
from countersign.store.db import Database


@dataclass(frozen=True)
class ApprovalHeaders:
    justification: str | None = None  # base64, as sent in x-msft-approval-justification
    approval_code: str | None = None  # a request id, as sent in x-msft-approval-code

    @classmethod
    def from_request(cls, headers: Mapping[str, str]) -> ApprovalHeaders:
        return cls(
            headers.get("x-msft-approval-justification"), headers.get("x-msft-approval-code")
        )


def execute(
    db: Database, caller: Caller, change: Change, headers: ApprovalHeaders, now: datetime
) -> Result:
    with db.write() as session:
        plan = plan_change(session, caller, change, now)
        return apply_change(session, caller, change, plan, now)
