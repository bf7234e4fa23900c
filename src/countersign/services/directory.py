"""The directory: users, groups (with nested members) and service principals, Graph-shaped."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, field_validator, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from countersign.auth.passwords import hash_secret, new_secret, verify_secret
from countersign.domain import permissions as p
from countersign.domain.actors import SERVICE_PRINCIPAL, USER, Caller
from countersign.domain.errors import Conflict, NotFound, ValidationFailed
from countersign.services.changes import (
    CREATE,
    DELETE,
    UPDATE,
    Change,
    GraphBody,
    Plan,
    Result,
    check_version,
    iso,
    parse_body,
    register,
)
from countersign.services.rbac import require_reach_over_holders
from countersign.store import tables as t
from countersign.store.db import bump_directory_version

# A user's properties that decide who can sign in as it: changing them takes the account over.
TAKEOVER_PROPERTIES = frozenset({"password_profile", "account_enabled", "user_principal_name"})
HIDDEN_PASSWORD = "set (hidden)"
UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GRAPH = "https://graph.microsoft.com/v1.0/directoryObjects/"


def user_json(user: t.User) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": user.id,
        "displayName": user.display_name,
        "userPrincipalName": user.user_principal_name,
        "mail": user.mail,
        "accountEnabled": user.account_enabled,
        "createdDateTime": iso(user.created_date_time),
    }


def group_json(group: t.Group) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.group",
        "id": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "securityEnabled": group.security_enabled,
        "mailEnabled": group.mail_enabled,
        "mailNickname": group.mail_nickname,
        "createdDateTime": iso(group.created_date_time),
    }


def service_principal_json(
    sp: t.ServicePrincipal, secrets: list[t.ServicePrincipalSecret]
) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.servicePrincipal",
        "id": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "accountEnabled": sp.account_enabled,
        "createdDateTime": iso(sp.created_date_time),
        "passwordCredentials": [
            {
                "keyId": s.key_id,
                "displayName": s.display_name,
                "hint": s.hint,
                "startDateTime": iso(s.start_date_time),
                "endDateTime": iso(s.end_date_time),
                "secretText": None,
            }
            for s in secrets
        ],
    }


def get_user(session: Session, tenant_id: str, user_id: str) -> t.User:
    user = session.get(t.User, user_id)
    if user is None or user.tenant_id != tenant_id:
        raise NotFound(f"User '{user_id}' does not exist.")
    return user


def get_group(session: Session, tenant_id: str, group_id: str) -> t.Group:
    group = session.get(t.Group, group_id)
    if group is None or group.tenant_id != tenant_id:
        raise NotFound(f"Group '{group_id}' does not exist.")
    return group


def get_service_principal(session: Session, tenant_id: str, sp_id: str) -> t.ServicePrincipal:
    sp = session.get(t.ServicePrincipal, sp_id)
    if sp is None or sp.tenant_id != tenant_id:
        raise NotFound(f"Service principal '{sp_id}' does not exist.")
    return sp


def directory_object_type(session: Session, tenant_id: str, object_id: str) -> str:
    """'user', 'servicePrincipal' or 'group' for an id in the tenant; NotFound otherwise."""
    found: dict[str, t.User | t.ServicePrincipal | t.Group | None] = {
        USER: session.get(t.User, object_id),
        SERVICE_PRINCIPAL: session.get(t.ServicePrincipal, object_id),
        "group": session.get(t.Group, object_id),
    }
    for kind, row in found.items():
        if row is not None and row.tenant_id == tenant_id:
            return kind
    raise NotFound(f"Directory object '{object_id}' does not exist in this tenant.")


def not_null(value: Any) -> Any:
    """For PATCH bodies: a property may be left out, but not set to null when it is required."""
    if value is None:
        raise ValueError("cannot be null")
    return value


# -- users ---------------------------------------------------------------------------------


class PasswordProfile(GraphBody):
    password: str | None = Field(None, min_length=8, max_length=256)
    # Set only by `freeze_secrets`: a change waiting for approval keeps the Argon2id hash of the
    # new password, never the password itself.
    password_hash: str | None = Field(None, pattern=r"^\$argon2id\$", max_length=256)
    force_change_password_next_sign_in: bool = False

    @model_validator(mode="after")
    def _one_password(self) -> PasswordProfile:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give a password")
        return self

    def hashed(self) -> str:
        return self.password_hash or hash_secret(self.password or "")


class UserCreate(GraphBody):
    display_name: str = Field(min_length=1, max_length=256)
    user_principal_name: str = Field(max_length=256)
    account_enabled: bool = True
    mail_nickname: str | None = Field(None, max_length=64)
    mail: str | None = Field(None, max_length=256)
    password_profile: PasswordProfile | None = None

    @field_validator("user_principal_name")
    @classmethod
    def _upn(cls, value: str) -> str:
        if not UPN.match(value):
            raise ValueError("must look like name@domain.example")
        return value.lower()


class UserUpdate(GraphBody):
    display_name: str | None = Field(None, min_length=1, max_length=256)
    user_principal_name: str | None = Field(None, max_length=256)
    account_enabled: bool | None = None
    mail_nickname: str | None = Field(None, max_length=64)
    mail: str | None = Field(None, max_length=256)
    password_profile: PasswordProfile | None = None

    _required = field_validator("display_name", "user_principal_name", "account_enabled")(not_null)

    @field_validator("user_principal_name")
    @classmethod
    def _upn(cls, value: str | None) -> str | None:
        if value is not None and not UPN.match(value):
            raise ValueError("must look like name@domain.example")
        return value.lower() if value else value


def _upn_free(session: Session, upn: str, except_id: str | None = None) -> None:
    existing = session.scalar(select(t.User.id).where(t.User.user_principal_name == upn))
    if existing is not None and existing != except_id:
        raise Conflict(f"Another user already has the userPrincipalName '{upn}'.")


def freeze_secrets(body: dict[str, Any]) -> dict[str, Any]:
    """The body to keep in an approval request: a new password becomes its Argon2id hash."""
    profile = body.get("passwordProfile")
    if not isinstance(profile, dict) or not isinstance(profile.get("password"), str):
        return body
    frozen = {k: v for k, v in profile.items() if k != "password"}
    return {**body, "passwordProfile": {**frozen, "passwordHash": hash_secret(profile["password"])}}


def hide_secrets(body: dict[str, Any]) -> dict[str, Any]:
    """A frozen body as people and clients may see it: a new password is "set (hidden)"."""
    profile = body.get("passwordProfile")
    if not isinstance(profile, dict):
        return body
    shown = {k: v for k, v in profile.items() if k not in ("password", "passwordHash")}
    return {**body, "passwordProfile": {**shown, "password": HIDDEN_PASSWORD}}


def carries_password_hash(body: dict[str, Any]) -> bool:
    profile = body.get("passwordProfile")
    return isinstance(profile, dict) and "passwordHash" in profile


def same_secrets(frozen: dict[str, Any], replay: dict[str, Any]) -> bool:
    """A replayed body matches a frozen one: the same except the password, which must be the
    one whose hash was frozen."""
    frozen_profile, replay_profile = frozen.get("passwordProfile"), replay.get("passwordProfile")
    if not isinstance(frozen_profile, dict) or "passwordHash" not in frozen_profile:
        return frozen == replay
    if not isinstance(replay_profile, dict) or not isinstance(replay_profile.get("password"), str):
        return False
    rest = {k: v for k, v in frozen_profile.items() if k != "passwordHash"}
    replay_rest = {k: v for k, v in replay_profile.items() if k != "password"}
    others = {k: v for k, v in frozen.items() if k != "passwordProfile"}
    replay_others = {k: v for k, v in replay.items() if k != "passwordProfile"}
    return (rest, others) == (replay_rest, replay_others) and verify_secret(
        frozen_profile["passwordHash"], replay_profile["password"]
    )


@register
class Users:
    collection = "users"
    entity_type = "user"
    category = "Directory"
    changes_access = True

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
        if change.operation == CREATE:
            caller.require(p.DIRECTORY_USERS_CREATE)
            body = parse_body(UserCreate, change.body)
            _upn_free(session, body.user_principal_name)
            after = body.model_dump(by_alias=True, exclude={"password_profile"})
            return Plan(self.entity_type, body.display_name, None, after=after)
        user = get_user(session, caller.tenant_id, change.target_id or "")
        check_version(user.version, change.expected_version)
        plan = Plan(
            self.entity_type,
            user.display_name,
            None,
            entity_keys=(f"users:{user.id}",),
            versions={user.id: user.version},
            before=user_json(user),
        )
        if change.operation == DELETE:
            caller.require(p.DIRECTORY_USERS_DELETE)
            if user.id == caller.id:
                raise ValidationFailed("You cannot delete your own account.")
            require_reach_over_holders(caller, [user.id])
            return plan
        update = parse_body(UserUpdate, change.body, partial=True)
        fields = update.model_fields_set
        if fields - {"password_profile"}:
            caller.require(p.DIRECTORY_USERS_UPDATE)
        if "password_profile" in fields:
            caller.require(p.DIRECTORY_USERS_PASSWORD_UPDATE)
        if fields & TAKEOVER_PROPERTIES:
            require_reach_over_holders(caller, [user.id])
        if update.user_principal_name:
            _upn_free(session, update.user_principal_name, user.id)
        plan.after = {
            **user_json(user),
            **update.model_dump(by_alias=True, exclude_unset=True, exclude={"password_profile"}),
        }
        return plan

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result:
        if change.operation == CREATE:
            body = parse_body(UserCreate, change.body)
            user = t.User(
                id=str(uuid.uuid4()),
                tenant_id=caller.tenant_id,
                display_name=body.display_name,
                user_principal_name=body.user_principal_name,
                mail=body.mail,
                account_enabled=body.account_enabled,
                password_hash=body.password_profile.hashed() if body.password_profile else None,
                created_date_time=now,
                last_modified_date_time=now,
            )
            session.add(user)
            session.flush()
            bump_directory_version(session, caller.tenant_id)
            return Result(201, user_json(user), user.id)
        user = get_user(session, caller.tenant_id, change.target_id or "")
        if change.operation == DELETE:
            session.execute(delete(t.GroupMember).where(t.GroupMember.member_id == user.id))
            session.delete(user)
            bump_directory_version(session, caller.tenant_id)
            return Result(204, None, user.id)
        update = parse_body(UserUpdate, change.body, partial=True)
        for name in update.model_fields_set - {"password_profile", "mail_nickname"}:
            setattr(user, name, getattr(update, name))
        if update.model_fields_set & TAKEOVER_PROPERTIES:
            # Whoever held the account before this change is signed out everywhere.
            user.tokens_valid_after = now
            session.execute(delete(t.WebSession).where(t.WebSession.user_id == user.id))
        if update.password_profile is not None:
            user.password_hash = update.password_profile.hashed()
            user.failed_sign_ins, user.locked_until = 0, None
        user.version += 1
        user.last_modified_date_time = now
        bump_directory_version(session, caller.tenant_id)
        return Result(204, user_json(user), user.id)


# -- groups and members --------------------------------------------------------------------


class GroupCreate(GraphBody):
    display_name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(None, max_length=1024)
    security_enabled: bool = True
    mail_enabled: bool = False
    mail_nickname: str | None = Field(None, max_length=64)
    group_types: list[str] = Field(default_factory=list, max_length=0)
    members_odata_bind: list[str] = Field(default_factory=list, alias="members@odata.bind")


class GroupUpdate(GraphBody):
    display_name: str | None = Field(None, min_length=1, max_length=256)
    description: str | None = Field(None, max_length=1024)
    mail_nickname: str | None = Field(None, max_length=64)

    _required = field_validator("display_name")(not_null)


class MemberRef(GraphBody):
    odata_id: str = Field(alias="@odata.id", min_length=1, max_length=512)


def member_id_from_ref(ref: str) -> str:
    """'https://graph.microsoft.com/v1.0/directoryObjects/{id}' or a bare id -> the id."""
    candidate = ref.rstrip("/").rsplit("/", 1)[-1]
    candidate = candidate.removeprefix("directoryObjects(").removesuffix(")").strip("'")
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        raise ValidationFailed(
            f"'{ref}' does not name a directory object.", target="@odata.id"
        ) from None


def _check_no_cycle(session: Session, tenant_id: str, group_id: str, member_id: str) -> None:
    """Adding group `member_id` into `group_id` must not make a group contain itself."""
    stack, seen = [member_id], set()
    while stack:
        current = stack.pop()
        if current == group_id:
            raise ValidationFailed("A group cannot contain itself, directly or through nesting.")
        if current in seen:
            continue
        seen.add(current)
        stack.extend(
            session.scalars(
                select(t.GroupMember.member_id).where(
                    t.GroupMember.group_id == current, t.GroupMember.tenant_id == tenant_id
                )
            )
        )


@register
class Groups:
    collection = "groups"
    entity_type = "group"
    category = "Directory"
    changes_access = True

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
        if change.operation == CREATE:
            caller.require(p.DIRECTORY_GROUPS_CREATE)
            body = parse_body(GroupCreate, change.body)
            member_ids = [member_id_from_ref(ref) for ref in body.members_odata_bind]
            if len(set(member_ids)) != len(member_ids):
                raise ValidationFailed(
                    "members@odata.bind names a member twice.", target="members@odata.bind"
                )
            for member_id in member_ids:
                directory_object_type(session, caller.tenant_id, member_id)
            return Plan(
                self.entity_type, body.display_name, None, after=body.model_dump(by_alias=True)
            )
        group = get_group(session, caller.tenant_id, change.target_id or "")
        check_version(group.version, change.expected_version)
        plan = Plan(
            self.entity_type,
            group.display_name,
            None,
            entity_keys=(f"groups:{group.id}",),
            versions={group.id: group.version},
            before=group_json(group),
        )
        if change.operation == DELETE:
            caller.require(p.DIRECTORY_GROUPS_DELETE)
            require_reach_over_holders(caller, [group.id])
        elif change.operation == UPDATE:
            caller.require(p.DIRECTORY_GROUPS_UPDATE)
            update = parse_body(GroupUpdate, change.body, partial=True)
            plan.after = {
                **group_json(group),
                **update.model_dump(by_alias=True, exclude_unset=True),
            }
        elif change.action_name in ("addMember", "removeMember"):
            caller.require(p.DIRECTORY_GROUPS_MEMBERS_UPDATE)
            require_reach_over_holders(caller, [group.id])
            member_id = member_id_from_ref(str(change.body.get("@odata.id", "")))
            kind = directory_object_type(session, caller.tenant_id, member_id)
            is_member = session.get(t.GroupMember, (group.id, member_id)) is not None
            if change.action_name == "addMember":
                if is_member:
                    raise Conflict("One or more added object references already exist.")
                if kind == "group":
                    _check_no_cycle(session, caller.tenant_id, group.id, member_id)
            elif not is_member:
                raise NotFound(f"'{member_id}' is not a member of the group.")
            plan.after = {"memberId": member_id, "memberType": kind}
        else:
            raise ValidationFailed(f"Unsupported operation on groups: {change.action_name}.")
        return plan

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result:
        if change.operation == CREATE:
            body = parse_body(GroupCreate, change.body)
            group = t.Group(
                id=str(uuid.uuid4()),
                tenant_id=caller.tenant_id,
                display_name=body.display_name,
                description=body.description,
                security_enabled=body.security_enabled,
                mail_enabled=body.mail_enabled,
                mail_nickname=body.mail_nickname,
                created_date_time=now,
                last_modified_date_time=now,
            )
            session.add(group)
            session.flush()
            for ref in body.members_odata_bind:
                member_id = member_id_from_ref(ref)
                session.add(
                    t.GroupMember(
                        group_id=group.id,
                        member_id=member_id,
                        tenant_id=caller.tenant_id,
                        member_type=directory_object_type(session, caller.tenant_id, member_id),
                    )
                )
            bump_directory_version(session, caller.tenant_id)
            return Result(201, group_json(group), group.id)
        group = get_group(session, caller.tenant_id, change.target_id or "")
        bump_directory_version(session, caller.tenant_id)
        if change.operation == DELETE:
            session.execute(delete(t.GroupMember).where(t.GroupMember.member_id == group.id))
            session.delete(group)
            return Result(204, None, group.id)
        if change.operation == UPDATE:
            update = parse_body(GroupUpdate, change.body, partial=True)
            for name in update.model_fields_set:
                setattr(group, name, getattr(update, name))
        else:
            assert plan.after is not None
            if change.action_name == "addMember":
                session.add(
                    t.GroupMember(
                        group_id=group.id,
                        member_id=plan.after["memberId"],
                        tenant_id=caller.tenant_id,
                        member_type=plan.after["memberType"],
                    )
                )
            else:
                session.execute(
                    delete(t.GroupMember).where(
                        t.GroupMember.group_id == group.id,
                        t.GroupMember.member_id == plan.after["memberId"],
                    )
                )
        group.version += 1
        group.last_modified_date_time = now
        return Result(204, group_json(group), group.id)


# -- service principals --------------------------------------------------------------------


class ServicePrincipalCreate(GraphBody):
    display_name: str = Field(min_length=1, max_length=256)
    app_id: str | None = None
    account_enabled: bool = True


class ServicePrincipalUpdate(GraphBody):
    display_name: str | None = Field(None, min_length=1, max_length=256)
    account_enabled: bool | None = None

    _required = field_validator("display_name", "account_enabled")(not_null)


class PasswordCredential(GraphBody):
    display_name: str | None = Field(None, max_length=256)
    end_date_time: datetime | None = None


class AddPassword(GraphBody):
    password_credential: PasswordCredential = Field(default_factory=PasswordCredential)


class RemovePassword(GraphBody):
    key_id: uuid.UUID


def _secrets(session: Session, sp_id: str) -> list[t.ServicePrincipalSecret]:
    return list(
        session.scalars(
            select(t.ServicePrincipalSecret).where(
                t.ServicePrincipalSecret.service_principal_id == sp_id
            )
        )
    )


@register
class ServicePrincipals:
    collection = "servicePrincipals"
    entity_type = "servicePrincipal"
    category = "Directory"
    changes_access = True

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
        if change.operation == CREATE:
            caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREATE)
            body = parse_body(ServicePrincipalCreate, change.body)
            if body.app_id is not None:
                try:
                    app_id = str(uuid.UUID(body.app_id))
                except ValueError:
                    raise ValidationFailed(
                        "Property 'appId' must be a GUID.", target="appId"
                    ) from None
                if session.scalar(
                    select(t.ServicePrincipal.id).where(t.ServicePrincipal.app_id == app_id)
                ):
                    raise Conflict(f"A service principal with appId '{app_id}' already exists.")
            return Plan(
                self.entity_type, body.display_name, None, after=body.model_dump(by_alias=True)
            )
        sp = get_service_principal(session, caller.tenant_id, change.target_id or "")
        plan = Plan(
            self.entity_type,
            sp.display_name,
            None,
            entity_keys=(f"servicePrincipals:{sp.id}",),
            before=service_principal_json(sp, _secrets(session, sp.id)),
        )
        if change.operation == DELETE:
            caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_DELETE)
            require_reach_over_holders(caller, [sp.id])
        elif change.operation == UPDATE:
            caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREATE)
            update = parse_body(ServicePrincipalUpdate, change.body, partial=True)
            if "account_enabled" in update.model_fields_set:
                require_reach_over_holders(caller, [sp.id])
        elif change.action_name == "addPassword":
            caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREDENTIALS_UPDATE)
            require_reach_over_holders(caller, [sp.id])
            end = parse_body(AddPassword, change.body).password_credential.end_date_time
            if end is not None and (end.tzinfo is None or end <= now):
                raise ValidationFailed(
                    "endDateTime must be a future time with a time zone.",
                    target="passwordCredential.endDateTime",
                )
        elif change.action_name == "removePassword":
            caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREDENTIALS_UPDATE)
            require_reach_over_holders(caller, [sp.id])
            key_id = str(parse_body(RemovePassword, change.body).key_id)
            secret = session.get(t.ServicePrincipalSecret, key_id)
            if secret is None or secret.service_principal_id != sp.id:
                raise NotFound(f"No password credential with keyId '{key_id}'.")
        else:
            raise ValidationFailed(
                f"Unsupported operation on servicePrincipals: {change.action_name}."
            )
        return plan

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result:
        if change.operation == CREATE:
            body = parse_body(ServicePrincipalCreate, change.body)
            sp = t.ServicePrincipal(
                id=str(uuid.uuid4()),
                tenant_id=caller.tenant_id,
                app_id=str(uuid.UUID(body.app_id)) if body.app_id else str(uuid.uuid4()),
                display_name=body.display_name,
                account_enabled=body.account_enabled,
                created_date_time=now,
            )
            session.add(sp)
            session.flush()
            bump_directory_version(session, caller.tenant_id)
            return Result(201, service_principal_json(sp, []), sp.id)
        sp = get_service_principal(session, caller.tenant_id, change.target_id or "")
        # Its credentials and enabled state are part of the directory snapshot.
        bump_directory_version(session, caller.tenant_id)
        if change.operation == DELETE:
            session.execute(delete(t.GroupMember).where(t.GroupMember.member_id == sp.id))
            session.delete(sp)
            return Result(204, None, sp.id)
        if change.operation == UPDATE:
            update = parse_body(ServicePrincipalUpdate, change.body, partial=True)
            for name in update.model_fields_set:
                setattr(sp, name, getattr(update, name))
            return Result(204, None, sp.id)
        if change.action_name == "removePassword":
            key_id = str(parse_body(RemovePassword, change.body).key_id)
            session.execute(
                delete(t.ServicePrincipalSecret).where(t.ServicePrincipalSecret.key_id == key_id)
            )
            return Result(204, None, sp.id)
        credential = parse_body(AddPassword, change.body).password_credential
        secret = new_secret()
        row = t.ServicePrincipalSecret(
            key_id=str(uuid.uuid4()),
            tenant_id=caller.tenant_id,
            service_principal_id=sp.id,
            display_name=credential.display_name,
            hint=secret[:3],
            secret_hash=hash_secret(secret),
            start_date_time=now,
            end_date_time=credential.end_date_time or now + timedelta(days=730),
        )
        session.add(row)
        # The secret is returned once, here, and never stored: the audit entry gets no copy.
        audit_view = {
            "keyId": row.key_id,
            "displayName": row.display_name,
            "hint": row.hint,
            "startDateTime": iso(row.start_date_time),
            "endDateTime": iso(row.end_date_time),
        }
        reply = {
            "@odata.type": "#microsoft.graph.passwordCredential",
            **audit_view,
            "secretText": secret,
            "customKeyIdentifier": None,
        }
        return Result(200, reply, sp.id, audit_after=audit_view)


def member_json(session: Session, member: t.GroupMember) -> dict[str, Any] | None:
    if member.member_type == USER:
        user = session.get(t.User, member.member_id)
        return user_json(user) if user else None
    if member.member_type == SERVICE_PRINCIPAL:
        sp = session.get(t.ServicePrincipal, member.member_id)
        return service_principal_json(sp, []) if sp else None
    group = session.get(t.Group, member.member_id)
    return group_json(group) if group else None
