"""Creating a tenant: built-in roles and scope tag, the first administrator with full rights."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from countersign.auth.passwords import hash_secret, new_secret
from countersign.clock import system_clock
from countersign.domain import permissions as p
from countersign.domain.errors import Conflict, ValidationFailed
from countersign.domain.rbac import DEFAULT_SCOPE_TAG
from countersign.services import audit
from countersign.services.handlers.directory import UPN
from countersign.services.identity import upn_taken
from countersign.store import tables as t
from countersign.store.scope import set_scope_tags

ADMINS_GROUP = "Intune Administrators"


@dataclass(frozen=True)
class NewTenant:
    tenant_id: str
    admin_id: str
    admin_upn: str
    admin_password: str
    roles: dict[str, str]  # built-in role name -> id


def create_tenant(
    session: Session,
    name: str,
    admin_upn: str,
    admin_password: str | None = None,
    admin_display_name: str | None = None,
    now: datetime | None = None,
) -> NewTenant:
    now = now or system_clock()
    admin_upn = admin_upn.strip().lower()
    if not name.strip():
        raise ValidationFailed("The tenant needs a name.")
    if not UPN.match(admin_upn):
        raise ValidationFailed(f"'{admin_upn}' is not a user principal name (name@domain.example).")
    if upn_taken(session, admin_upn):
        raise Conflict(f"A user '{admin_upn}' already exists.")
    password = admin_password or new_secret()
    if len(password) < 8:
        raise ValidationFailed("The password must have at least 8 characters.")
    tenant = t.Tenant(
        id=str(uuid.uuid4()),
        display_name=name.strip(),
        created_date_time=now,
        request_lifetime_days=30,
        directory_version=1,
        audit_sequence=0,
        audit_head_hash=audit.GENESIS_HASH,
    )
    session.add(tenant)
    session.flush()
    session.add(
        t.RoleScopeTag(
            tenant_id=tenant.id,
            id=DEFAULT_SCOPE_TAG,
            display_name="Default",
            description="Built-in scope tag",
            is_built_in=True,
        )
    )
    roles = {}
    for role_name, (description, permissions) in p.BUILT_IN_ROLES.items():
        role = t.RoleDefinition(
            id=str(uuid.uuid4()),
            tenant_id=tenant.id,
            display_name=role_name,
            description=description,
            is_built_in=True,
            permissions=sorted(permissions),
            role_scope_tag_ids=[],
            created_date_time=now,
            last_modified_date_time=now,
        )
        session.add(role)
        roles[role_name] = role.id
    session.flush()
    for role_id in roles.values():
        role_row = session.get(t.RoleDefinition, role_id)
        assert role_row is not None
        set_scope_tags(session, role_row, [DEFAULT_SCOPE_TAG])
    admin = t.User(
        id=str(uuid.uuid4()),
        tenant_id=tenant.id,
        display_name=admin_display_name or admin_upn.split("@")[0],
        user_principal_name=admin_upn,
        account_enabled=True,
        password_hash=hash_secret(password),
        created_date_time=now,
        last_modified_date_time=now,
    )
    group = t.Group(
        id=str(uuid.uuid4()),
        tenant_id=tenant.id,
        display_name=ADMINS_GROUP,
        description="Holders of the Intune Administrator role",
        security_enabled=True,
        mail_enabled=False,
        created_date_time=now,
        last_modified_date_time=now,
    )
    session.add_all([admin, group])
    session.flush()
    session.add(
        t.GroupMember(
            group_id=group.id, member_id=admin.id, tenant_id=tenant.id, member_type="user"
        )
    )
    session.add(
        t.RoleAssignment(
            id=str(uuid.uuid4()),
            tenant_id=tenant.id,
            role_definition_id=roles[p.INTUNE_ADMINISTRATOR],
            display_name=ADMINS_GROUP,
            description="Full access, every scope tag",
            members=[group.id],
            role_scope_tag_ids=[DEFAULT_SCOPE_TAG],
            all_scope_tags=True,
            created_date_time=now,
            last_modified_date_time=now,
        )
    )
    audit.record(
        session,
        tenant_id=tenant.id,
        actor=None,
        actor_name="countersign",
        activity="Create tenant",
        activity_type="Create tenant",
        category="Tenant",
        target_type="tenant",
        target_id=tenant.id,
        target_name=tenant.display_name,
        after={"displayName": tenant.display_name, "firstAdministrator": admin_upn},
        now=now,
    )
    return NewTenant(tenant.id, admin.id, admin_upn, password, roles)
