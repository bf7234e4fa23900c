"""Multi admin approval rules: policy types and platforms, access-policy coverage, the diff.

Pure functions of values; the services load the values and persist the outcomes. The request
statuses and their transitions are domain/request.py's; what a change needs (approvers, quorum)
is domain/protection.py's; who may approve is domain/eligibility.py's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from countersign.domain.policy_rules import PolicyRules

# -- policy types and platforms ------------------------------------------------------------

NOT_APPLICABLE = "notApplicable"
WINDOWS = ("windows10AndLater", "windows81AndLater", "windows10X")
NON_WINDOWS = ("androidDeviceAdministrator", "androidEnterprise", "iOSiPadOS", "macOS")
PLATFORMS = (NOT_APPLICABLE, *NON_WINDOWS, *WINDOWS)

# operationApprovalPolicyType values Countersign protects, and whether the type has platforms.
POLICY_TYPES: dict[str, bool] = {
    "app": True,
    "script": False,
    "role": False,
    "deviceWipe": False,
    "deviceRetire": False,
    "deviceDelete": False,
    "deviceDeprovision": False,
    "compliancePolicy": True,
    "configurationPolicy": True,
    "tenantConfiguration": False,
    "operationApprovalPolicy": False,
}
ACCESS_POLICY_TYPE = "operationApprovalPolicy"


def parse_platforms(value: str) -> frozenset[str]:
    """Graph serialises flags as comma-separated names."""
    names = frozenset(part.strip() for part in value.split(",") if part.strip())
    unknown = sorted(names - set(PLATFORMS))
    if unknown:
        raise ValueError(f"'{unknown[0]}' is not an operationApprovalPolicyPlatform")
    return names or frozenset({NOT_APPLICABLE})


def format_platforms(platforms: Iterable[str]) -> str:
    chosen = set(platforms)
    return ",".join(name for name in PLATFORMS if name in chosen)


@dataclass(frozen=True)
class ActivePolicy:
    id: str
    display_name: str
    policy_type: str
    platforms: frozenset[str]
    approver_group_ids: tuple[str, ...]
    approvals_required: int = 1
    auto_complete: bool = False
    request_lifetime_days: int | None = None
    # Scope tags, excluded applications, stages, windows (domain/policy_rules.py).
    rules: PolicyRules = field(default_factory=PolicyRules)

    def covers(self, policy_type: str, platform: str) -> bool:
        """Same type, and the platform set holds the object's platform (notApplicable: all)."""
        if policy_type != self.policy_type:
            return False
        return NOT_APPLICABLE in self.platforms or platform in self.platforms


def covering(
    policies: Iterable[ActivePolicy], policy_type: str, platform: str
) -> list[ActivePolicy]:
    return [policy for policy in policies if policy.covers(policy_type, platform)]


# -- the reviewer's diff ---------------------------------------------------------------------


def json_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Changes from `before` to `after` as a list of {path, op, before, after} (JSON pointers)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key not in after:
                changes.append(
                    {"path": child, "op": "remove", "before": before[key], "after": None}
                )
            elif key not in before:
                changes.append({"path": child, "op": "add", "before": None, "after": after[key]})
            else:
                changes.extend(json_diff(before[key], after[key], child))
        return changes
    if before == after:
        return []
    if before is None:
        return [{"path": path or "/", "op": "add", "before": None, "after": after}]
    if after is None:
        return [{"path": path or "/", "op": "remove", "before": before, "after": None}]
    return [{"path": path or "/", "op": "replace", "before": before, "after": after}]
