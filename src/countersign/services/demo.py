"""`countersign demo`: a tenant like the seed's story, ready to sign in to."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from countersign.auth.tokens import TokenClaims
from countersign.domain import permissions as p
from countersign.domain.actors import USER, Caller
from countersign.services.approve_request import approve_request
from countersign.services.catalog import run_unprotected
from countersign.services.changes import ACTION, CREATE, Change
from countersign.services.complete_request import complete_request
from countersign.services.gate import ApprovalHeaders, Submitted, execute
from countersign.services.identity import resolve_caller
from countersign.services.tenants import create_tenant
from countersign.store import tables as t
from countersign.store.db import Database

DEMO_TENANT = "Contoso (demo)"
DOMAIN = "contoso.example"
PASSWORD = "Demo-Passw0rd!"
APPROVERS_GROUP = "Intune Change Approvers"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _device(name: str, system: str, version: str, upn: str, state: str) -> dict[str, Any]:
    return {
        "deviceName": name,
        "operatingSystem": system,
        "osVersion": version,
        "serialNumber": f"SN-{name}",
        "userPrincipalName": f"{upn}@{DOMAIN}",
        "complianceState": state,
    }


# Apps, scripts, a compliance policy and devices, as in the seed's story (collection, body).
DEMO_OBJECTS: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "mobileApps",
        {
            "@odata.type": "#microsoft.graph.win32LobApp",
            "displayName": "Contoso VPN Client",
            "publisher": "Contoso",
            "fileName": "ContosoVPN.intunewin",
            "installCommandLine": "setup.exe /quiet",
            "uninstallCommandLine": "setup.exe /uninstall /quiet",
        },
    ),
    (
        "mobileApps",
        {
            "@odata.type": "#microsoft.graph.iosStoreApp",
            "displayName": "Microsoft Authenticator",
            "publisher": "Microsoft",
            "appStoreUrl": "https://apps.apple.com/app/id983156458",
            "bundleId": "com.microsoft.azureauthenticator",
        },
    ),
    (
        "deviceManagementScripts",
        {
            "displayName": "Set time zone",
            "fileName": "timezone.ps1",
            "scriptContent": _b64('Set-TimeZone -Id "W. Europe Standard Time"'),
        },
    ),
    (
        "deviceHealthScripts",
        {
            "displayName": "Restart stalled Windows Update",
            "publisher": "Contoso IT",
            "detectionScriptContent": _b64(
                "if ((Get-Service wuauserv).Status -ne 'Running') { exit 1 }"
            ),
            "remediationScriptContent": _b64("Start-Service wuauserv"),
        },
    ),
    (
        "deviceCompliancePolicies",
        {
            "@odata.type": "#microsoft.graph.windows10CompliancePolicy",
            "displayName": "Windows baseline compliance",
            "passwordRequired": True,
            "passwordMinimumLength": 8,
            "storageRequireEncryption": True,
        },
    ),
    ("managedDevices", _device("CONTOSO-PC-001", "Windows", "10.0.22631", "alex", "compliant")),
    ("managedDevices", _device("CONTOSO-PC-002", "Windows", "10.0.19045", "sam", "noncompliant")),
    ("managedDevices", _device("ALEX-IPHONE", "iOS", "17.5", "alex", "compliant")),
    ("managedDevices", _device("SAM-MACBOOK", "macOS", "14.5", "sam", "compliant")),
    ("managedDevices", _device("KIOSK-ANDROID-01", "Android", "14", "kiosk", "unknown")),
)


@dataclass(frozen=True)
class DemoTenant:
    tenant_id: str
    administrators: tuple[str, ...]
    password: str
    created: bool


def caller_for(db: Database, tenant_id: str, user_id: str) -> Caller:
    with db.read() as session:
        return resolve_caller(session, db, TokenClaims(tenant_id, user_id, USER))


def ensure_demo_tenant(db: Database) -> DemoTenant:
    """Create the demo tenant once; later runs find it and change nothing."""
    admins = (f"admin1@{DOMAIN}", f"admin2@{DOMAIN}")
    with db.read() as session:
        existing = session.scalar(select(t.Tenant.id).where(t.Tenant.display_name == DEMO_TENANT))
    if existing is not None:
        return DemoTenant(existing, admins, PASSWORD, created=False)
    with db.write() as session:
        tenant = create_tenant(
            session, DEMO_TENANT, admins[0], PASSWORD, admin_display_name="Administrator 1"
        )
    admin1 = caller_for(db, tenant.tenant_id, tenant.admin_id)
    with db.write() as session:
        admin2 = run_unprotected(
            session,
            admin1,
            Change(
                "users",
                CREATE,
                body={
                    "displayName": "Administrator 2",
                    "userPrincipalName": admins[1],
                    "passwordProfile": {"password": PASSWORD},
                },
            ),
        ).body
        approvers = run_unprotected(
            session,
            admin1,
            Change(
                "groups",
                CREATE,
                body={
                    "displayName": APPROVERS_GROUP,
                    "securityEnabled": True,
                    "mailEnabled": False,
                    "description": "Approve multi admin approval requests",
                },
            ),
        ).body
        assert admin2 is not None and approvers is not None
        for user_id in (tenant.admin_id, admin2["id"]):
            run_unprotected(
                session,
                admin1,
                Change(
                    "groups",
                    ACTION,
                    approvers["id"],
                    {"@odata.id": user_id},
                    action_name="addMember",
                ),
            )
        admins_group = session.scalar(
            select(t.Group.id).where(
                t.Group.tenant_id == tenant.tenant_id,
                t.Group.display_name == "Intune Administrators",
            )
        )
        run_unprotected(
            session,
            admin1,
            Change(
                "groups", ACTION, admins_group, {"@odata.id": admin2["id"]}, action_name="addMember"
            ),
        )
        run_unprotected(
            session,
            admin1,
            Change(
                "roleAssignments",
                CREATE,
                body={
                    "displayName": "Intune Change Approvers",
                    "members": [approvers["id"]],
                    "roleScopeTagIds": ["0"],
                    "roleDefinitionId": tenant.roles[p.MAA_APPROVER],
                },
            ),
        )
        for collection, body in DEMO_OBJECTS:
            run_unprotected(session, admin1, Change(collection, CREATE, body=body))
    second = caller_for(db, tenant.tenant_id, admin2["id"])
    for policy_type in DEMO_POLICIES:
        body = {
            "displayName": f"Protect {policy_type}",
            "description": "Created by countersign demo",
            "policyType": policy_type,
            "policyPlatform": "notApplicable",
            "approverGroupIds": [approvers["id"]],
        }
        _approved_change(db, admin1, second, Change("operationApprovalPolicies", CREATE, body=body))
    return DemoTenant(tenant.tenant_id, admins, PASSWORD, created=True)


# Access policies the demo tenant starts with, each approved by admin2 and completed by admin1.
DEMO_POLICIES = ("app", "script", "role", "deviceWipe", "deviceRetire", "deviceDelete")


def _approved_change(db: Database, requester: Caller, approver: Caller, change: Change) -> None:
    """Submit, approve and complete a protected change, as two administrators would."""
    now = datetime.now(UTC)
    outcome = execute(db, requester, change, ApprovalHeaders(justification=_b64("Demo setup")), now)
    assert isinstance(outcome, Submitted), "access policies are always protected"
    approve_request(db, approver, outcome.request_id, "Demo setup", now)
    complete_request(db, requester, outcome.request_id, now)
