"""An access policy's row as the domain sees it (the directory snapshot's `ActivePolicy`)."""

from __future__ import annotations

from collections.abc import Mapping

from countersign.domain.approval import ActivePolicy, parse_platforms
from countersign.domain.policy_rules import PolicyRules, Stage
from countersign.store import tables as t


def active_policy(row: t.ApprovalPolicy, principal_by_app_id: Mapping[str, str]) -> ActivePolicy:
    """`principal_by_app_id`: the tenant's service principals' ids by appId (exclusions name
    appIds; callers are known by id). An appId no service principal has excludes nobody."""
    return ActivePolicy(
        id=row.id,
        display_name=row.display_name,
        policy_type=row.policy_type,
        platforms=parse_platforms(row.policy_platform),
        approver_group_ids=tuple(row.approver_group_ids),
        approvals_required=row.approvals_required,
        auto_complete=row.auto_complete,
        request_lifetime_days=row.request_lifetime_days,
        rules=PolicyRules(
            scope_tag_ids=frozenset(row.scope_tag_ids or ()),
            excluded_principal_ids=frozenset(
                principal_by_app_id[app_id]
                for app_id in row.excluded_application_ids or ()
                if app_id in principal_by_app_id
            ),
            stages=tuple(Stage.from_json(stage) for stage in row.stages or ()),
            approval_window_hours=row.approval_window_hours,
            completion_window_hours=row.completion_window_hours,
        ),
    )
