"""An approval request as Graph's operationApprovalRequest JSON, for every reader (API, admin
center, notifications): its status as read now (expiry exact), and its frozen change without
the secrets nobody may read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from countersign.domain import policy_rules
from countersign.domain import request as lifecycle
from countersign.domain.approval import Stage
from countersign.domain.eligibility import Approvers
from countersign.graph import schema
from countersign.services.changes import iso
from countersign.services.handlers import directory
from countersign.store import tables as t


def effective_status(row: t.ApprovalRequest, now: datetime) -> str:
    """Expiry is exact on every read, whether or not the sweeper has run."""
    return lifecycle.effective_status(row.status, row.expiration_date_time, now)


def _identity(
    principal_id: str | None, principal_type: str | None, name: str | None
) -> dict[str, Any] | None:
    if principal_id is None:
        return None
    key = "application" if principal_type == "servicePrincipal" else "user"
    return {key: {"id": principal_id, "displayName": name}}


def request_json(
    row: t.ApprovalRequest, now: datetime, decisions: list[t.ApprovalDecision] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.operationApprovalRequest",
        "id": row.id,
        "requestDateTime": iso(row.request_date_time),
        "expirationDateTime": iso(row.expiration_date_time),
        "lastModifiedDateTime": iso(row.last_modified_date_time),
        "requestor": _identity(row.requestor_id, row.requestor_type, row.requestor_name),
        "approver": _identity(row.approver_id, row.approver_type, row.approver_name),
        "status": effective_status(row, now),
        "requestJustification": row.request_justification,
        "approvalJustification": row.approval_justification,
        # A collection in Graph's schema; a request has one type.
        "requiredOperationApprovalPolicyTypes": [row.policy_type],
        "payloadId": row.payload_id,
        "payloadType": row.payload_type,
        "payloadName": row.payload_name,
        "payloadOperation": row.payload_operation,
        "actionName": row.action_name,
        "payload": public_change(row.payload.get("change")),
        "displayPayload": row.display_payload,
        "approvalsRequired": row.approvals_required,
        "autoComplete": row.auto_complete,
        "policyIds": list(row.policy_ids),
        "completedDateTime": iso(row.completed_date_time),
        # Countersign extensions (issue 17): the policies that apply, the stages, the schedule.
        "appliedPolicies": row.payload.get("policies")
        or [{"id": policy_id, "displayName": None} for policy_id in row.policy_ids],
        "currentStage": (row.current_stage or 0) + 1
        if effective_status(row, now) == lifecycle.Status.NEEDS_APPROVAL
        else None,
        "stages": stages_json(row, now, decisions),
        "scheduledCompletionDateTime": iso(row.scheduled_completion_date_time),
    }
    if decisions is not None:
        body["approvals"] = [
            _decision_json(d) for d in sorted(decisions, key=lambda d: d.decided_date_time)
        ]
    # Every property Graph's type defines, then Countersign's extensions (payload, approvals...).
    return schema.serve("operationApprovalRequest", body, include_unknown=True)


def _decision_json(d: t.ApprovalDecision) -> dict[str, Any]:
    return {
        "approver": {"user": {"id": d.approver_id, "displayName": d.approver_name}},
        "decision": d.decision,
        "justification": d.justification,
        "decidedDateTime": iso(d.decided_date_time),
        "stage": (d.stage or 0) + 1,
    }


def stages_of(row: t.ApprovalRequest) -> tuple[Stage, ...]:
    """The request's stages, frozen at submission (a request without: one stage)."""
    groups = Approvers.from_json(row.payload["approvers"]).group_ids
    return policy_rules.stages_from(row.stages, groups, row.approvals_required)


def stages_json(
    row: t.ApprovalRequest, now: datetime, decisions: list[t.ApprovalDecision] | None
) -> list[dict[str, Any]]:
    """Each stage with its groups, quorum, state and (when the decisions are given) who
    decided in it."""
    current = row.current_stage or 0
    status = effective_status(row, now)
    stages = []
    for index, stage in enumerate(stages_of(row)):
        if index < current:
            state = "approved"
        elif index > current:
            state = "notStarted"
        elif status == lifecycle.Status.NEEDS_APPROVAL:
            state = "inProgress"
        elif status == lifecycle.Status.REJECTED:
            state = "rejected"
        else:
            state = "notReached"  # the request ended (expired, cancelled) before this stage
        item: dict[str, Any] = {"stage": index + 1, **stage.to_json(), "status": state}
        if decisions is not None:
            item["decisions"] = [
                _decision_json(d)
                for d in sorted(decisions, key=lambda d: d.decided_date_time)
                if (d.stage or 0) == index
            ]
        stages.append(item)
    return stages


def public_change(frozen: dict[str, Any] | None) -> dict[str, Any] | None:
    """The frozen change as anyone may read it: a pending password is never shown, not even as
    its hash (rule 10); a notification channel's secret (which completion must apply, so it is
    frozen in clear) is write-only, shown as ***."""
    if not frozen:
        return frozen
    body = frozen.get("body") or {}
    if frozen.get("collection") == "notificationChannels" and body.get("secret"):
        return {**frozen, "body": {**body, "secret": "***"}}
    if frozen.get("collection") != "users":
        return frozen
    return {**frozen, "body": directory.hide_secrets(body)}
