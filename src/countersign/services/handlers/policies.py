"""Access policies (operationApprovalPolicy): always protected; a policy exists only once the
request that creates it is approved and completed."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from sqlalchemy.orm import Session

from countersign.domain import approval as a
from countersign.domain.errors import ValidationFailed
from countersign.domain.rbac import DirectorySnapshot
from countersign.domain.resource_types import RESOURCE_TYPES
from countersign.graph import schema
from countersign.services.changes import (
    DELETE,
    GraphBody,
    Plan,
    Result,
    etag,
    iso,
    parse_body,
)
from countersign.services.handlers.base import CollectionHandler, Write, get_in_tenant, touch
from countersign.store import tables as t

MAX_LIFETIME_DAYS = 90


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
        "version": row.version,
    }


def get_policy(session: Session, tenant_id: str, policy_id: str) -> t.ApprovalPolicy:
    return get_in_tenant(session, t.ApprovalPolicy, tenant_id, policy_id, "Access policy")


class PolicySet(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    policy_type: str | None = None
    policy_platform: str | None = None


class PolicyBody(GraphBody):
    odata_type: str | None = Field(None, alias="@odata.type")
    display_name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(None, max_length=1024)
    policy_type: str | None = None
    policy_platform: str | None = None
    policy_set: PolicySet | None = None
    approver_group_ids: list[str] = Field(min_length=1, max_length=20)
    approvals_required: int = Field(1, ge=1, le=10)
    auto_complete: bool = False
    request_lifetime_in_days: int | None = Field(None, ge=1, le=MAX_LIFETIME_DAYS)

    @field_validator("approver_group_ids")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a group twice")
        return value


class PolicyUpdate(PolicyBody):
    display_name: str = Field(None, min_length=1, max_length=128)  # type: ignore[assignment]
    approver_group_ids: list[str] = Field(None, min_length=1, max_length=20)  # type: ignore[arg-type]


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


class OperationApprovalPolicies(CollectionHandler[t.ApprovalPolicy]):
    resource = RESOURCE_TYPES["operationApprovalPolicies"]

    get = staticmethod(get_policy)

    to_json = staticmethod(policy_json)

    def plan_create(self, write: Write) -> Plan:
        body = parse_body(PolicyBody, write.change.body)
        policy_type, platform = _type_and_platform(body, None)
        check_approver_groups(
            write.session, write.caller.snapshot, write.caller.tenant_id, body.approver_group_ids
        )
        after = {
            **body.model_dump(by_alias=True, exclude={"odata_type", "policy_set"}),
            "policyType": policy_type,
            "policyPlatform": platform,
        }
        return self.new_plan(body.display_name, after)

    def plan_existing(self, write: Write, row: t.ApprovalPolicy, plan: Plan) -> None:
        if write.change.operation == DELETE:
            return
        update = parse_body(PolicyUpdate, write.change.body, partial=True)
        _, platform = _type_and_platform(update, row)
        if "approver_group_ids" in update.model_fields_set:
            check_approver_groups(
                write.session,
                write.caller.snapshot,
                write.caller.tenant_id,
                update.approver_group_ids,
            )
        plan.after = {
            **policy_json(row),
            **update.model_dump(
                by_alias=True, exclude_unset=True, exclude={"odata_type", "policy_set"}
            ),
            "policyPlatform": platform,
        }

    def create(self, write: Write) -> t.ApprovalPolicy:
        body = parse_body(PolicyBody, write.change.body)
        policy_type, platform = _type_and_platform(body, None)
        return t.ApprovalPolicy(
            **write.new_object_columns(),
            display_name=body.display_name,
            description=body.description,
            policy_type=policy_type,
            policy_platform=platform,
            approver_group_ids=body.approver_group_ids,
            approvals_required=body.approvals_required,
            auto_complete=body.auto_complete,
            request_lifetime_days=body.request_lifetime_in_days,
        )

    def apply_existing(self, write: Write, plan: Plan, row: t.ApprovalPolicy) -> Result:
        update = parse_body(PolicyUpdate, write.change.body, partial=True)
        _, row.policy_platform = _type_and_platform(update, row)
        fields = update.model_fields_set
        for name, column in (
            ("display_name", "display_name"),
            ("description", "description"),
            ("approver_group_ids", "approver_group_ids"),
            ("approvals_required", "approvals_required"),
            ("auto_complete", "auto_complete"),
            ("request_lifetime_in_days", "request_lifetime_days"),
        ):
            if name in fields:
                setattr(row, column, getattr(update, name))
        touch(row, write.now)
        return Result(200, policy_json(row), row.id)
