"""The directory: users, groups (with nested members) and service principals, Graph-shaped."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_snake
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, object_session

from countersign.auth.passwords import hash_secret, new_secret, verify_secret
from countersign.domain import permissions as p
from countersign.domain.actors import SERVICE_PRINCIPAL, USER
from countersign.domain.errors import (
    Conflict,
    NotFound,
    NotImplementedByCountersign,
    ValidationFailed,
)
from countersign.domain.resource_types import RESOURCE_TYPES
from countersign.graph import schema
from countersign.services.changes import DELETE, UPDATE, GraphBody, Plan, Result, iso, parse_body
from countersign.services.handlers.base import CollectionHandler, Write, get_in_tenant, touch
from countersign.services.handlers.rbac import columns_and_kept, require_reach_over_holders
from countersign.store import tables as t

# A user's properties that decide who can sign in as it: changing them takes the account over.
TAKEOVER_PROPERTIES = frozenset({"password_profile", "account_enabled", "user_principal_name"})
HIDDEN_PASSWORD = "set (hidden)"
UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GRAPH = "https://graph.microsoft.com/v1.0/directoryObjects/"


def user_json(user: t.User) -> dict[str, Any]:
    """A user with the structural properties of Graph's user type (null where Countersign
    keeps no value)."""
    values = {
        **user.properties,
        "@odata.type": "#microsoft.graph.user",
        "id": user.id,
        "displayName": user.display_name,
        "userPrincipalName": user.user_principal_name,
        "mail": user.mail,
        "accountEnabled": user.account_enabled,
        "createdDateTime": iso(user.created_date_time),
    }
    return schema.serve("user", values, include_unknown=True)


def group_json(group: t.Group) -> dict[str, Any]:
    return schema.serve("group", _group_values(group), include_unknown=True)


def _group_values(group: t.Group) -> dict[str, Any]:
    return {
        **group.properties,
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
    return schema.serve("servicePrincipal", _sp_values(sp, secrets), include_unknown=True)


def _sp_values(sp: t.ServicePrincipal, secrets: list[t.ServicePrincipalSecret]) -> dict[str, Any]:
    return {
        **sp.properties,
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
    return get_in_tenant(session, t.User, tenant_id, user_id, "User")


def get_group(session: Session, tenant_id: str, group_id: str) -> t.Group:
    return get_in_tenant(session, t.Group, tenant_id, group_id, "Group")


def get_service_principal(session: Session, tenant_id: str, sp_id: str) -> t.ServicePrincipal:
    return get_in_tenant(session, t.ServicePrincipal, tenant_id, sp_id, "Service principal")


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
    force_change_password_next_sign_in_with_mfa: bool = False

    @model_validator(mode="after")
    def _one_password(self) -> PasswordProfile:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give a password")
        return self

    def hashed(self) -> str:
        return self.password_hash or hash_secret(self.password or "")


# What Countersign keeps of a user in its own columns, with its own rules: what signs in as
# the user (the directory snapshot digests the UPN, mail and password hash) and whether it may.
# Every other property of Graph's user type is kept as given (`properties`): a city or a job
# title is data, never a credential.
# (`id` is among them: the server gives it, and the model refuses one in a body, as before.)
USER_COLUMNS = frozenset(
    {"id", "displayName", "userPrincipalName", "accountEnabled", "mail", "passwordProfile"}
)


class KeptUserRules(GraphBody):
    """Countersign's checks on kept properties beyond their Graph type."""

    usage_location: str | None = Field(None, pattern=r"^[A-Za-z]{2}$")  # ISO 3166 alpha-2


KEPT_RULES = frozenset(KeptUserRules.model_fields)


class UserCreate(GraphBody):
    display_name: str = Field(min_length=1, max_length=256)
    user_principal_name: str = Field(max_length=256)
    account_enabled: bool = True
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
    mail: str | None = Field(None, max_length=256)
    password_profile: PasswordProfile | None = None

    _required = field_validator("display_name", "user_principal_name", "account_enabled")(not_null)

    @field_validator("user_principal_name")
    @classmethod
    def _upn(cls, value: str | None) -> str | None:
        if value is not None and not UPN.match(value):
            raise ValueError("must look like name@domain.example")
        return value.lower() if value else value


U = TypeVar("U", UserCreate, UserUpdate)


def user_body(model: type[U], body: dict[str, Any]) -> tuple[U, dict[str, Any]]:
    """A user's write body: its columns through `model`, and the properties it keeps, checked
    against Graph's user type (unknown ones a 400 naming them, read-only ones ignored)."""
    parsed, kept = columns_and_kept("user", USER_COLUMNS, model, body, model is UserUpdate)
    parse_body(KeptUserRules, {k: v for k, v in kept.items() if to_snake(k) in KEPT_RULES})
    return parsed, kept


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


class Users(CollectionHandler[t.User]):
    resource = RESOURCE_TYPES["users"]

    get = staticmethod(get_user)

    to_json = staticmethod(user_json)

    def plan_create(self, write: Write) -> Plan:
        write.caller.require(p.DIRECTORY_USERS_CREATE)
        body, kept = user_body(UserCreate, write.change.body)
        _upn_free(write.session, body.user_principal_name)
        return self.new_plan(
            body.display_name,
            {**kept, **body.model_dump(by_alias=True, exclude={"password_profile"})},
        )

    def plan_existing(self, write: Write, row: t.User, plan: Plan) -> None:
        if write.change.operation == DELETE:
            write.caller.require(p.DIRECTORY_USERS_DELETE)
            if row.id == write.caller.id:
                raise ValidationFailed("You cannot delete your own account.")
            require_reach_over_holders(write.caller, [row.id])
            return
        update, kept = user_body(UserUpdate, write.change.body)
        fields = update.model_fields_set
        if kept or fields - {"password_profile"}:
            write.caller.require(p.DIRECTORY_USERS_UPDATE)
        if "password_profile" in fields:
            write.caller.require(p.DIRECTORY_USERS_PASSWORD_UPDATE)
        if fields & TAKEOVER_PROPERTIES:
            require_reach_over_holders(write.caller, [row.id])
        if update.user_principal_name:
            _upn_free(write.session, update.user_principal_name, row.id)
        plan.after = {
            **user_json(row),
            **kept,
            **update.model_dump(by_alias=True, exclude_unset=True, exclude={"password_profile"}),
        }

    def create(self, write: Write) -> t.User:
        body, kept = user_body(UserCreate, write.change.body)
        return t.User(
            **write.new_object_columns(),
            display_name=body.display_name,
            user_principal_name=body.user_principal_name,
            mail=body.mail,
            account_enabled=body.account_enabled,
            password_hash=body.password_profile.hashed() if body.password_profile else None,
            properties=schema.patched({}, kept),
        )

    def delete(self, write: Write, row: t.User) -> None:
        _delete_member(write.session, row)

    def apply_existing(self, write: Write, plan: Plan, row: t.User) -> Result:
        update, kept = user_body(UserUpdate, write.change.body)
        for name in update.model_fields_set - {"password_profile"}:
            setattr(row, name, getattr(update, name))
        row.properties = schema.patched(row.properties, kept)
        if update.model_fields_set & TAKEOVER_PROPERTIES:
            # Whoever held the account before this change is signed out everywhere.
            row.tokens_valid_after = write.now
            write.session.execute(delete(t.WebSession).where(t.WebSession.user_id == row.id))
        if update.password_profile is not None:
            row.password_hash = update.password_profile.hashed()
            row.failed_sign_ins, row.locked_until = 0, None
        touch(row, write.now)
        return Result(204, user_json(row), row.id)


def _delete_member(session: Session, row: t.User | t.Group | t.ServicePrincipal) -> None:
    """A directory object leaves every group it was a member of as it goes."""
    session.execute(delete(t.GroupMember).where(t.GroupMember.member_id == row.id))
    session.delete(row)


# -- groups and members --------------------------------------------------------------------


# What Countersign keeps of a group in its own columns: its kind (a security group, which
# reach and approver sets are computed from), its names and its members. Every other property
# of Graph's group type is kept as given.
GROUP_COLUMNS = frozenset(
    {
        "id",
        "displayName",
        "description",
        "securityEnabled",
        "mailEnabled",
        "mailNickname",
        "groupTypes",
        "members@odata.bind",
    }
)


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


G = TypeVar("G", GroupCreate, GroupUpdate)


def group_body(model: type[G], body: dict[str, Any]) -> tuple[G, dict[str, Any]]:
    """A group's write body: its columns through `model`, and the properties it keeps."""
    return columns_and_kept("group", GROUP_COLUMNS, model, body, model is GroupUpdate)


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


class Groups(CollectionHandler[t.Group]):
    resource = RESOURCE_TYPES["groups"]

    get = staticmethod(get_group)

    to_json = staticmethod(group_json)

    def plan_create(self, write: Write) -> Plan:
        write.caller.require(p.DIRECTORY_GROUPS_CREATE)
        body, kept = group_body(GroupCreate, write.change.body)
        member_ids = [member_id_from_ref(ref) for ref in body.members_odata_bind]
        if len(set(member_ids)) != len(member_ids):
            raise ValidationFailed(
                "members@odata.bind names a member twice.", target="members@odata.bind"
            )
        for member_id in member_ids:
            directory_object_type(write.session, write.caller.tenant_id, member_id)
        return self.new_plan(body.display_name, {**kept, **body.model_dump(by_alias=True)})

    def plan_existing(self, write: Write, row: t.Group, plan: Plan) -> None:
        if write.change.operation == DELETE:
            write.caller.require(p.DIRECTORY_GROUPS_DELETE)
            require_reach_over_holders(write.caller, [row.id])
        elif write.change.operation == UPDATE:
            write.caller.require(p.DIRECTORY_GROUPS_UPDATE)
            update, kept = group_body(GroupUpdate, write.change.body)
            plan.after = {
                **group_json(row),
                **kept,
                **update.model_dump(by_alias=True, exclude_unset=True),
            }
        elif write.change.action_name in ("addMember", "removeMember"):
            write.caller.require(p.DIRECTORY_GROUPS_MEMBERS_UPDATE)
            require_reach_over_holders(write.caller, [row.id])
            member_id = member_id_from_ref(str(write.change.body.get("@odata.id", "")))
            kind = directory_object_type(write.session, write.caller.tenant_id, member_id)
            is_member = write.session.get(t.GroupMember, (row.id, member_id)) is not None
            if write.change.action_name == "addMember":
                if is_member:
                    raise Conflict("One or more added object references already exist.")
                if kind == "group":
                    _check_no_cycle(write.session, write.caller.tenant_id, row.id, member_id)
            elif not is_member:
                raise NotFound(f"'{member_id}' is not a member of the group.")
            plan.after = {"memberId": member_id, "memberType": kind}
        else:
            raise ValidationFailed(f"Unsupported operation on groups: {write.change.action_name}.")

    def create(self, write: Write) -> t.Group:
        body, kept = group_body(GroupCreate, write.change.body)
        return t.Group(
            **write.new_object_columns(),
            display_name=body.display_name,
            description=body.description,
            security_enabled=body.security_enabled,
            mail_enabled=body.mail_enabled,
            mail_nickname=body.mail_nickname,
            properties=schema.patched({}, kept),
        )

    def created(self, write: Write, row: t.Group) -> None:
        for ref in group_body(GroupCreate, write.change.body)[0].members_odata_bind:
            member_id = member_id_from_ref(ref)
            kind = directory_object_type(write.session, write.caller.tenant_id, member_id)
            _add_member(write.session, row, member_id, kind)

    def delete(self, write: Write, row: t.Group) -> None:
        _delete_member(write.session, row)

    def apply_existing(self, write: Write, plan: Plan, row: t.Group) -> Result:
        if write.change.operation == UPDATE:
            update, kept = group_body(GroupUpdate, write.change.body)
            for name in update.model_fields_set:
                setattr(row, name, getattr(update, name))
            row.properties = schema.patched(row.properties, kept)
        else:
            assert plan.after is not None
            if write.change.action_name == "addMember":
                _add_member(write.session, row, plan.after["memberId"], plan.after["memberType"])
            else:
                write.session.execute(
                    delete(t.GroupMember).where(
                        t.GroupMember.group_id == row.id,
                        t.GroupMember.member_id == plan.after["memberId"],
                    )
                )
        touch(row, write.now)
        return Result(204, group_json(row), row.id)


def _add_member(session: Session, group: t.Group, member_id: str, member_type: str) -> None:
    session.add(
        t.GroupMember(
            group_id=group.id,
            member_id=member_id,
            tenant_id=group.tenant_id,
            member_type=member_type,
        )
    )


# -- service principals --------------------------------------------------------------------


# What Countersign keeps of a service principal in its own columns: what signs in as it (its
# appId and the secrets addPassword mints) and whether it may. Every other property of Graph's
# servicePrincipal type is kept as given.
SP_COLUMNS = frozenset({"id", "displayName", "appId", "accountEnabled"})


class ServicePrincipalCreate(GraphBody):
    display_name: str = Field(min_length=1, max_length=256)
    app_id: str | None = None
    account_enabled: bool = True


class ServicePrincipalUpdate(GraphBody):
    display_name: str | None = Field(None, min_length=1, max_length=256)
    account_enabled: bool | None = None

    _required = field_validator("display_name", "account_enabled")(not_null)


S = TypeVar("S", ServicePrincipalCreate, ServicePrincipalUpdate)


def service_principal_body(model: type[S], body: dict[str, Any]) -> tuple[S, dict[str, Any]]:
    """A service principal's write body: its columns through `model`, and what it keeps."""
    # Graph takes credentials in the body too; Countersign mints secrets only through
    # addPassword (hashed, shown once) and has no certificate sign-in.
    if "passwordCredentials" in body:
        raise ValidationFailed(
            "Property 'passwordCredentials' is written through addPassword and removePassword.",
            target="passwordCredentials",
        )
    if "keyCredentials" in body:
        raise NotImplementedByCountersign(
            "Countersign does not implement certificate credentials (keyCredentials).",
            target="keyCredentials",
        )
    partial = model is ServicePrincipalUpdate
    return columns_and_kept("servicePrincipal", SP_COLUMNS, model, body, partial)


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


class ServicePrincipals(CollectionHandler[t.ServicePrincipal]):
    resource = RESOURCE_TYPES["servicePrincipals"]

    get = staticmethod(get_service_principal)

    def to_json(self, row: t.ServicePrincipal) -> dict[str, Any]:
        session = object_session(row)
        return service_principal_json(row, _secrets(session, row.id) if session else [])

    def plan_create(self, write: Write) -> Plan:
        write.caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREATE)
        body, kept = service_principal_body(ServicePrincipalCreate, write.change.body)
        if body.app_id is not None:
            try:
                app_id = str(uuid.UUID(body.app_id))
            except ValueError:
                raise ValidationFailed("Property 'appId' must be a GUID.", target="appId") from None
            if write.session.scalar(
                select(t.ServicePrincipal.id).where(t.ServicePrincipal.app_id == app_id)
            ):
                raise Conflict(f"A service principal with appId '{app_id}' already exists.")
        return self.new_plan(body.display_name, {**kept, **body.model_dump(by_alias=True)})

    def plan_existing(self, write: Write, row: t.ServicePrincipal, plan: Plan) -> None:
        if write.change.operation == DELETE:
            write.caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_DELETE)
            require_reach_over_holders(write.caller, [row.id])
        elif write.change.operation == UPDATE:
            write.caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREATE)
            update, kept = service_principal_body(ServicePrincipalUpdate, write.change.body)
            if "account_enabled" in update.model_fields_set:
                require_reach_over_holders(write.caller, [row.id])
            plan.after = {
                **(plan.before or {}),
                **kept,
                **update.model_dump(by_alias=True, exclude_unset=True),
            }
        elif write.change.action_name == "addPassword":
            write.caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREDENTIALS_UPDATE)
            require_reach_over_holders(write.caller, [row.id])
            end = parse_body(AddPassword, write.change.body).password_credential.end_date_time
            if end is not None and (end.tzinfo is None or end <= write.now):
                raise ValidationFailed(
                    "endDateTime must be a future time with a time zone.",
                    target="passwordCredential.endDateTime",
                )
        elif write.change.action_name == "removePassword":
            write.caller.require(p.DIRECTORY_SERVICE_PRINCIPALS_CREDENTIALS_UPDATE)
            require_reach_over_holders(write.caller, [row.id])
            key_id = str(parse_body(RemovePassword, write.change.body).key_id)
            secret = write.session.get(t.ServicePrincipalSecret, key_id)
            if secret is None or secret.service_principal_id != row.id:
                raise NotFound(f"No password credential with keyId '{key_id}'.")
        else:
            raise ValidationFailed(
                f"Unsupported operation on servicePrincipals: {write.change.action_name}."
            )

    def create(self, write: Write) -> t.ServicePrincipal:
        body, kept = service_principal_body(ServicePrincipalCreate, write.change.body)
        return t.ServicePrincipal(
            id=str(uuid.uuid4()),
            tenant_id=write.caller.tenant_id,
            app_id=str(uuid.UUID(body.app_id)) if body.app_id else str(uuid.uuid4()),
            display_name=body.display_name,
            account_enabled=body.account_enabled,
            properties=schema.patched({}, kept),
            created_date_time=write.now,
        )

    def delete(self, write: Write, row: t.ServicePrincipal) -> None:
        _delete_member(write.session, row)

    def apply_existing(self, write: Write, plan: Plan, row: t.ServicePrincipal) -> Result:
        # Its credentials and enabled state are part of the directory snapshot (resource_types).
        if write.change.operation == UPDATE:
            update, kept = service_principal_body(ServicePrincipalUpdate, write.change.body)
            for name in update.model_fields_set:
                setattr(row, name, getattr(update, name))
            row.properties = schema.patched(row.properties, kept)
            return Result(204, None, row.id)
        if write.change.action_name == "removePassword":
            key_id = str(parse_body(RemovePassword, write.change.body).key_id)
            write.session.execute(
                delete(t.ServicePrincipalSecret).where(t.ServicePrincipalSecret.key_id == key_id)
            )
            return Result(204, None, row.id)
        credential = parse_body(AddPassword, write.change.body).password_credential
        secret = new_secret()
        stored = t.ServicePrincipalSecret(
            key_id=str(uuid.uuid4()),
            tenant_id=write.caller.tenant_id,
            service_principal_id=row.id,
            display_name=credential.display_name,
            hint=secret[:3],
            secret_hash=hash_secret(secret),
            start_date_time=write.now,
            end_date_time=credential.end_date_time or write.now + timedelta(days=730),
        )
        write.session.add(stored)
        # The secret is returned once, here, and never stored: the audit entry gets no copy.
        audit_view = {
            "keyId": stored.key_id,
            "displayName": stored.display_name,
            "hint": stored.hint,
            "startDateTime": iso(stored.start_date_time),
            "endDateTime": iso(stored.end_date_time),
        }
        reply = {
            "@odata.type": "#microsoft.graph.passwordCredential",
            **audit_view,
            "secretText": secret,
            "customKeyIdentifier": None,
        }
        return Result(200, reply, row.id, audit_after=audit_view)


def member_json(session: Session, member: t.GroupMember) -> dict[str, Any] | None:
    if member.member_type == USER:
        user = session.get(t.User, member.member_id)
        return user_json(user) if user else None
    if member.member_type == SERVICE_PRINCIPAL:
        sp = session.get(t.ServicePrincipal, member.member_id)
        return service_principal_json(sp, []) if sp else None
    group = session.get(t.Group, member.member_id)
    return group_json(group) if group else None
