"""Access policies (operationApprovalPolicy): always protected; a policy exists only once the
request that creates it is approved and completed. Every change of one -- its exclusion list
included -- is an `operationApprovalPolicy` change, which no exclusion and no policy's scope
ever lets through without approval (services/approvals.py: protection_for).

Countersign's extensions (issue 17; the rules are domain/policy_rules.py's): `scopeTagIds`,
`excludedApplicationIds`, `stages`, `approvalWindowHours`, `completionWindowHours`. A policy
with `stages` serves as `approverGroupIds` the union of its stages' groups and as
`approvalsRequired` the sum of their quorums; a client may send those two only with these
values."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.domain import approval as a
from countersign.domain import policy_rules as rules
from countersign.domain.errors import ValidationFailed
from countersign.domain.rbac import DirectorySnapshot
from countersign.domain.resource_types import RESOURCE_TYPES
from countersign.graph import schema
from countersign.services.changes import DELETE, GraphBody, Plan, Result, etag, iso, parse_body
from countersign.services.handlers.base import CollectionHandler, Write, get_in_tenant, touch
from countersign.store import tables as t

MAX_LIFETIME_DAYS = 90
MAX_WINDOW_HOURS = MAX_LIFETIME_DAYS * 24


def policy_json(row: t.ApprovalPolicy) -> dict[str, Any]:
    """Every property of Graph's operationApprovalPolicy, then Countersign's extensions."""
    return schema.serve("operationApprovalPolicy", _policy_values(row), include_unknown=True)


def _policy_values(row: t.ApprovalPolicy) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.operationApprovalPolicy",
        "@odata.etag": etag(row.version),
        "id": row.id,
        "displayName": row.display_name,
        "description": row.description,
        "lastModifiedDateTime": iso(row.last_modified_date_time),
        "createdDateTime": iso(row.created_date_time),
        "policyType": row.policy_type,
        "policyPlatform": row.policy_platform,
        "policySet": {"policyType": row.policy_type, "policyPlatform": row.policy_platform},
        "approverGroupIds": list(row.approver_group_ids),
        "approvalsRequired": row.approvals_required,
        "autoComplete": row.auto_complete,
        "requestLifetimeInDays": row.request_lifetime_days,
        "scopeTagIds": list(row.scope_tag_ids or ()),
        "excludedApplicationIds": list(row.excluded_application_ids or ()),
        "stages": list(row.stages or ()),
        "approvalWindowHours": row.approval_window_hours,
        "completionWindowHours": row.completion_window_hours,
        "version": row.version,
    }


def get_policy(session: Session, tenant_id: str, policy_id: str) -> t.ApprovalPolicy:
    return get_in_tenant(session, t.ApprovalPolicy, tenant_id, policy_id, "Access policy")


class PolicySet(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    policy_type: str | None = None
    policy_platform: str | None = None


def _distinct(value: list[str] | None) -> list[str] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("lists an id twice")
    return value


class StageBody(GraphBody):
    approver_group_ids: list[str] = Field(min_length=1, max_length=20)
    approvals_required: int = Field(1, ge=1, le=10, strict=True)

    _groups = field_validator("approver_group_ids")(_distinct)


class PolicyBody(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(None, max_length=1024)
    policy_type: str | None = None
    policy_platform: str | None = None
    policy_set: PolicySet | None = None
    # Required unless `stages` is given (then derived from them).
    approver_group_ids: list[str] | None = Field(None, min_length=1, max_length=20)
    approvals_required: int | None = Field(None, ge=1, le=10)
    auto_complete: bool = False
    request_lifetime_in_days: int | None = Field(None, ge=1, le=MAX_LIFETIME_DAYS)
    scope_tag_ids: list[str] = Field([], max_length=rules.MAX_SCOPE_TAGS)
    excluded_application_ids: list[str] = Field([], max_length=rules.MAX_EXCLUDED_APPLICATIONS)
    # Empty: one stage (approverGroupIds, approvalsRequired).
    stages: list[StageBody] = Field([], max_length=rules.MAX_STAGES)
    approval_window_hours: int | None = Field(None, ge=1, le=MAX_WINDOW_HOURS, strict=True)
    completion_window_hours: int | None = Field(None, ge=1, le=MAX_WINDOW_HOURS, strict=True)

    _lists = field_validator("approver_group_ids", "scope_tag_ids", "excluded_application_ids")(
        _distinct
    )


class PolicyUpdate(PolicyBody):
    display_name: str = Field(None, min_length=1, max_length=128)  # type: ignore[assignment]


def _approvers(
    body: PolicyBody, current: t.ApprovalPolicy | None
) -> tuple[list[str], int, list[dict[str, Any]]]:
    """The policy's approverGroupIds, approvalsRequired and stages after `body`: a policy with
    stages has the union of their groups and the sum of their quorums."""
    given = body.model_fields_set
    if "stages" in given or current is None:
        stages = [stage.model_dump(by_alias=True) for stage in body.stages]
    else:
        stages = list(current.stages or ())
    if not stages:
        groups = body.approver_group_ids if "approver_group_ids" in given else None
        if groups is None:
            groups = list(current.approver_group_ids) if current else None
        if groups is None:
            raise ValidationFailed(
                "Property 'approverGroupIds' is required (or give 'stages').",
                target="approverGroupIds",
            )
        required = body.approvals_required
        if required is None:
            required = current.approvals_required if current and "stages" not in given else 1
        return groups, required, []
    groups = list(dict.fromkeys(g for stage in stages for g in stage["approverGroupIds"]))
    required = sum(stage["approvalsRequired"] for stage in stages)
    if body.approver_group_ids is not None and set(body.approver_group_ids) != set(groups):
        raise ValidationFailed(
            "A policy with stages approves through its stages' groups: leave out "
            "'approverGroupIds' or give exactly their union.",
            target="approverGroupIds",
        )
    if body.approvals_required is not None and body.approvals_required != required:
        raise ValidationFailed(
            "A policy with stages needs each stage's quorum: leave out 'approvalsRequired' or "
            f"give their sum ({required}).",
            target="approvalsRequired",
        )
    return groups, required, stages


def _type_and_platform(body: PolicyBody, current: t.ApprovalPolicy | None) -> tuple[str, str]:
    policy_type = body.policy_type or (body.policy_set.policy_type if body.policy_set else None)
    platform = body.policy_platform or (
        body.policy_set.policy_platform if body.policy_set else None
    )
    policy_type = policy_type or (current.policy_type if current else None)
    if policy_type is None:
        raise ValidationFailed("Property 'policyType' is required.", target="policyType")
    if policy_type not in a.POLICY_TYPES:
        raise ValidationFailed(
            f"'{policy_type}' is not a policy type Countersign protects "
            f"({', '.join(sorted(a.POLICY_TYPES))}).",
            target="policyType",
        )
    if policy_type == a.ACCESS_POLICY_TYPE:
        raise ValidationFailed(
            "Access policies are always protected; no policy is needed for them.",
            target="policyType",
        )
    if current is not None and policy_type != current.policy_type:
        raise ValidationFailed(
            "The policy type of an access policy cannot be changed.", target="policyType"
        )
    try:
        platforms = a.parse_platforms(
            platform or (current.policy_platform if current else a.NOT_APPLICABLE)
        )
    except ValueError as exc:
        raise ValidationFailed(
            f"Property 'policyPlatform': {exc}.", target="policyPlatform"
        ) from None
    if not a.POLICY_TYPES[policy_type] and platforms != {a.NOT_APPLICABLE}:
        raise ValidationFailed(
            f"Policies of type '{policy_type}' apply to all platforms: "
            "policyPlatform must be notApplicable.",
            target="policyPlatform",
        )
    if a.NOT_APPLICABLE in platforms and len(platforms) > 1:
        raise ValidationFailed(
            "notApplicable (all platforms) cannot be combined with others.", target="policyPlatform"
        )
    return policy_type, a.format_platforms(platforms)


def check_approver_groups(
    session: Session, snapshot: DirectorySnapshot, tenant_id: str, group_ids: list[str]
) -> None:
    """Refuse up front what Intune lets fail silently later (SPEC §3)."""
    for group_id in group_ids:
        group = session.get(t.Group, group_id)
        if group is None or group.tenant_id != tenant_id:
            raise ValidationFailed(
                f"Approver group '{group_id}' does not exist.",
                target="approverGroupIds",
                reason="approverGroupNotFound",
            )
        name = f"Approver group '{group.display_name}' ({group_id})"
        if not group.security_enabled or group.mail_enabled:
            raise ValidationFailed(
                f"{name} must be a security group that is not mail-enabled.",
                target="approverGroupIds",
                reason="approverGroupNotSecurityGroup",
            )
        if not snapshot.group_is_on_role_assignment(group_id):
            raise ValidationFailed(
                f"{name} is not a member group of any role assignment, so its "
                "members could never approve.",
                target="approverGroupIds",
                reason="approverGroupHasNoRoleAssignment",
            )


# Graph property -> column, for the properties a body sets (the rest are computed).
COLUMNS = (
    ("displayName", "display_name"),
    ("description", "description"),
    ("policyType", "policy_type"),
    ("policyPlatform", "policy_platform"),
    ("approverGroupIds", "approver_group_ids"),
    ("approvalsRequired", "approvals_required"),
    ("autoComplete", "auto_complete"),
    ("requestLifetimeInDays", "request_lifetime_days"),
    ("scopeTagIds", "scope_tag_ids"),
    ("excludedApplicationIds", "excluded_application_ids"),
    ("stages", "stages"),
    ("approvalWindowHours", "approval_window_hours"),
    ("completionWindowHours", "completion_window_hours"),
)
# Body field -> column, where the names differ.
_FIELD = {"request_lifetime_days": "request_lifetime_in_days"}


def _columns(body: PolicyBody, current: t.ApprovalPolicy | None) -> dict[str, Any]:
    """The policy's columns once `body` is applied (to `current`, for an update)."""
    policy_type, platform = _type_and_platform(body, current)
    groups, required, stages = _approvers(body, current)
    values: dict[str, Any] = {}
    for _, column in COLUMNS:
        name = _FIELD.get(column, column)
        if current is None or name in body.model_fields_set:
            values[column] = getattr(body, name, None)
        else:
            values[column] = getattr(current, column)
    values.update(
        policy_type=policy_type,
        policy_platform=platform,
        approver_group_ids=groups,
        approvals_required=required,
        stages=stages,
        excluded_application_ids=[app.lower() for app in values["excluded_application_ids"]],
    )
    return values


def _check(write: Write, columns: dict[str, Any]) -> None:
    """What must hold of a policy before its request is even submitted."""
    session, tenant_id = write.session, write.caller.tenant_id
    for stage in columns["stages"] or [{"approverGroupIds": columns["approver_group_ids"]}]:
        check_approver_groups(session, write.caller.snapshot, tenant_id, stage["approverGroupIds"])
    for tag_id in columns["scope_tag_ids"]:
        if session.get(t.RoleScopeTag, (tenant_id, tag_id)) is None:
            raise ValidationFailed(
                f"Property 'scopeTagIds': scope tag '{tag_id}' does not exist.",
                target="scopeTagIds",
                reason="scopeTagNotFound",
            )
    apps = columns["excluded_application_ids"]
    known = set(
        session.scalars(
            select(t.ServicePrincipal.app_id).where(
                t.ServicePrincipal.tenant_id == tenant_id, t.ServicePrincipal.app_id.in_(apps)
            )
        )
    )
    for app_id in apps:
        if app_id not in known:
            raise ValidationFailed(
                f"Property 'excludedApplicationIds': no service principal of the tenant has "
                f"the appId '{app_id}'.",
                target="excludedApplicationIds",
                reason="applicationNotFound",
            )
    lifetime = columns["request_lifetime_days"] or session.scalar(
        select(t.Tenant.request_lifetime_days).where(t.Tenant.id == tenant_id)
    )
    for name, column in (
        ("approvalWindowHours", "approval_window_hours"),
        ("completionWindowHours", "completion_window_hours"),
    ):
        if not rules.window_within_lifetime(columns[column], lifetime or MAX_LIFETIME_DAYS):
            raise ValidationFailed(
                f"Property '{name}' ({columns[column]} hours) is longer than the request "
                f"lifetime ({lifetime} days).",
                target=name,
                reason="windowBeyondLifetime",
            )


def _graph(columns: dict[str, Any]) -> dict[str, Any]:
    return {name: columns[column] for name, column in COLUMNS}


class OperationApprovalPolicies(CollectionHandler[t.ApprovalPolicy]):
    resource = RESOURCE_TYPES["operationApprovalPolicies"]

    get = staticmethod(get_policy)

    to_json = staticmethod(policy_json)

    def plan_create(self, write: Write) -> Plan:
        body = parse_body(PolicyBody, write.change.body)
        columns = _columns(body, None)
        _check(write, columns)
        return self.new_plan(body.display_name, _graph(columns))

    def plan_existing(self, write: Write, row: t.ApprovalPolicy, plan: Plan) -> None:
        if write.change.operation == DELETE:
            return
        columns = _columns(parse_body(PolicyUpdate, write.change.body, partial=True), row)
        _check(write, columns)
        plan.after = {**policy_json(row), **_graph(columns)}

    def create(self, write: Write) -> t.ApprovalPolicy:
        columns = _columns(parse_body(PolicyBody, write.change.body), None)
        return t.ApprovalPolicy(**write.new_object_columns(), **columns)

    def apply_existing(self, write: Write, plan: Plan, row: t.ApprovalPolicy) -> Result:
        columns = _columns(parse_body(PolicyUpdate, write.change.body, partial=True), row)
        for column, value in columns.items():
            setattr(row, column, value)
        touch(row, write.now)
        return Result(200, policy_json(row), row.id)
