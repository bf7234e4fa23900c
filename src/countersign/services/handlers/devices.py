"""Managed devices: the inventory (imported through the API or a CSV file) and its remote
actions — wipe, retire, delete (one device or many) and the check-in that completes them."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field
from pydantic.alias_generators import to_snake
from sqlalchemy import select
from sqlalchemy.orm import Session

from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.domain.errors import Conflict, DomainError, ValidationFailed
from countersign.domain.rbac import DEFAULT_SCOPE_TAG
from countersign.domain.resource_types import RESOURCE_TYPES, lock_key
from countersign.graph import schema
from countersign.services.changes import (
    CREATE,
    DELETE,
    UPDATE,
    Change,
    GraphBody,
    Plan,
    Result,
    apply_planned,
    check_version,
    etag,
    iso,
    parse_body,
)
from countersign.services.handlers.base import CollectionHandler, get_in_tenant, touch
from countersign.services.handlers.rbac import check_scope_tags
from countersign.services.handlers.resources import visible_or_404
from countersign.store import tables as t
from countersign.store.db import Database
from countersign.store.scope import set_scope_tags

COLLECTION = "managedDevices"
ENTITY_TYPE = "managedDevice"

ComplianceState = Literal[
    "unknown", "compliant", "noncompliant", "conflict", "error", "inGracePeriod", "configManager"
]
ManagementState = Literal[
    "managed",
    "retirePending",
    "retireFailed",
    "wipePending",
    "wipeFailed",
    "unhealthy",
    "deletePending",
    "retireIssued",
    "wipeIssued",
    "wipeCanceled",
    "retireCanceled",
    "discovered",
    # Countersign's states once a pending wipe or retire completed at check-in.
    "wiped",
    "retired",
]


# A device's inventory, in Graph's names: the body's fields and the row's columns (each the
# name in snake case), the CSV import's columns and the API's $filter fields.
INVENTORY = (
    "deviceName",
    "operatingSystem",
    "osVersion",
    "serialNumber",
    "userPrincipalName",
    "complianceState",
    "managementState",
    "lastSyncDateTime",
)


class DeviceBody(GraphBody):
    odata_type: (
        Literal["#microsoft.graph.managedDevice", "microsoft.graph.managedDevice"] | None
    ) = Field(None, alias="@odata.type")
    device_name: str = Field(min_length=1, max_length=256)
    operating_system: Literal["Windows", "iOS", "iPadOS", "Android", "macOS", "Linux"]
    os_version: str | None = Field(None, max_length=64)
    serial_number: str | None = Field(None, max_length=128)
    user_principal_name: str | None = Field(None, max_length=256)
    compliance_state: ComplianceState = "unknown"
    management_state: ManagementState = "managed"
    last_sync_date_time: AwareDatetime | None = None  # a time without a zone is ambiguous
    role_scope_tag_ids: list[str] = Field(
        default_factory=lambda: [DEFAULT_SCOPE_TAG], min_length=1, max_length=100
    )


DEVICE_BODY_NAMES = frozenset(f.alias or n for n, f in DeviceBody.model_fields.items())
# Properties a PATCH may not set: they move only through the remote actions (and approval).
ACTION_KEPT = frozenset({"deviceActionResults"})


def inventory_properties(body: dict[str, Any]) -> dict[str, Any]:
    """Graph's other managedDevice properties in an import (the inventory feed may set the
    ones Graph keeps read-only, such as manufacturer or azureADDeviceId)."""
    return schema.check_body(ENTITY_TYPE, body, skip=DEVICE_BODY_NAMES, include_read_only=True)


def _update_of(
    row: t.ManagedDevice, body: dict[str, Any]
) -> tuple[DeviceBody | None, dict[str, Any]]:
    """An UPDATE's two parts: the inventory's columns it names (laid over the device's
    current ones, as the CSV import sends them; None when it names none) and Graph's other
    writable managedDevice properties (a PATCH's notes...; read-only ones ignored)."""
    for name in ACTION_KEPT & set(body):
        raise ValidationFailed(
            f"Property '{name}' changes only through a remote action (wipe, retire...).",
            target=name,
        )
    modelled = _modelled(body)
    columns = None
    if modelled:
        current = {
            k: v
            for k, v in device_json(row).items()
            if k in DEVICE_BODY_NAMES and v is not None and not k.startswith("@")
        }
        columns = parse_body(DeviceBody, {**current, **modelled})
        leaving = columns.management_state in LEAVING
        if leaving and columns.management_state != row.management_state:
            # Those states come only from an approved wipe or retire: an edit never claims one.
            raise ValidationFailed(
                f"managementState '{columns.management_state}' is set only by a remote action "
                "(wipe, retire), which needs its own approval.",
                target="managementState",
            )
    return columns, schema.check_body(ENTITY_TYPE, body, skip=DEVICE_BODY_NAMES)


class WipeBody(GraphBody):
    keep_enrollment_data: bool = False
    keep_user_data: bool = False
    mac_os_unlock_code: str | None = Field(None, max_length=16)
    persist_esim_data_plan: bool = False
    use_protected_wipe: bool = False


class NoBody(GraphBody):
    pass


class DeprovisionBody(GraphBody):
    deprovision_reason: str | None = Field(None, max_length=1024)


@dataclass(frozen=True)
class DeviceAction:
    name: str
    policy_type: str | None
    permission: str
    body: type[GraphBody] = NoBody
    pending_state: str | None = None  # managementState while the action waits for check-in
    done_state: str | None = None  # managementState once the device checked in


ACTIONS = {
    action.name: action
    for action in (
        DeviceAction("wipe", "deviceWipe", p.REMOTE_TASKS_WIPE, WipeBody, "wipePending", "wiped"),
        DeviceAction(
            "retire", "deviceRetire", p.REMOTE_TASKS_RETIRE, NoBody, "retirePending", "retired"
        ),
        DeviceAction("delete", "deviceDelete", p.MANAGED_DEVICES_DELETE),
        # Graph's deprovision (co-managed devices): recorded as an action result, done at
        # check-in; the device's managementState stays.
        DeviceAction("deprovision", "deviceDeprovision", p.REMOTE_TASKS_RETIRE, DeprovisionBody),
        DeviceAction("syncDevice", None, p.REMOTE_TASKS_SYNC_DEVICE),
    )
}
BULK_ACTIONS = ("wipe", "retire", "delete", "deprovision")
# Actions that leave a pending deviceActionResult until the device checks in.
RECORDED = frozenset({"wipe", "retire", "deprovision"})
# A device on its way out takes no further wipe or retire.
LEAVING = frozenset({"wipePending", "retirePending", "wiped", "retired"})


def device_json(row: t.ManagedDevice) -> dict[str, Any]:
    """A device as Graph serves it: every managedDevice property (null where the inventory
    has no value), then Countersign's extensions (createdDateTime, version...)."""
    values = {
        **(row.properties or {}),
        "@odata.type": "#microsoft.graph.managedDevice",
        "@odata.etag": etag(row.version),
        "id": row.id,
        "deviceName": row.device_name,
        "operatingSystem": row.operating_system,
        "osVersion": row.os_version,
        "serialNumber": row.serial_number,
        "userPrincipalName": row.user_principal_name,
        "complianceState": row.compliance_state,
        "managementState": row.management_state,
        "lastSyncDateTime": iso(row.last_sync_date_time),
        "enrolledDateTime": iso(row.created_date_time),
        "roleScopeTagIds": list(row.role_scope_tag_ids),
        "deviceActionResults": list(row.device_action_results),
        "createdDateTime": iso(row.created_date_time),
        "lastModifiedDateTime": iso(row.last_modified_date_time),
        "version": row.version,
    }
    return schema.serve(ENTITY_TYPE, values, include_unknown=True)


def get_device(session: Session, tenant_id: str, device_id: str) -> t.ManagedDevice:
    return get_in_tenant(session, t.ManagedDevice, tenant_id, device_id, "Managed device")


def _pending(action: DeviceAction, now: datetime) -> dict[str, Any]:
    return {
        "actionName": action.name,
        "actionState": "pending",
        "startDateTime": iso(now),
        "lastUpdatedDateTime": iso(now),
    }


def _after(row: t.ManagedDevice, action: DeviceAction, now: datetime) -> dict[str, Any] | None:
    """The device as the action will leave it (None when it is deleted)."""
    if action.name == "delete":
        return None
    before = device_json(row)
    if action.name not in RECORDED:
        return before
    return {
        **before,
        "managementState": action.pending_state or row.management_state,
        "deviceActionResults": [*before["deviceActionResults"], _pending(action, now)],
    }


@dataclass
class Sorted:
    """Devices a bulk action names, by what will happen to each."""

    acted: list[t.ManagedDevice]
    failed: list[str]
    not_found: list[str]
    not_supported: list[str]


def _sort(
    session: Session, caller: Caller, action: DeviceAction, device_ids: tuple[str, ...]
) -> Sorted:
    result = Sorted([], [], [], [])
    for device_id in dict.fromkeys(device_ids):
        row = session.get(t.ManagedDevice, device_id)
        if (
            row is None
            or row.tenant_id != caller.tenant_id
            or not caller.can(p.MANAGED_DEVICES_READ, row.role_scope_tag_ids)
        ):
            result.not_found.append(device_id)
        elif not caller.can(action.permission, row.role_scope_tag_ids):
            result.failed.append(device_id)
        elif action.pending_state is not None and row.management_state in LEAVING:
            result.not_supported.append(device_id)
        else:
            result.acted.append(row)
    return result


def _act(session: Session, row: t.ManagedDevice, action: DeviceAction, now: datetime) -> None:
    if action.name == "delete":
        set_scope_tags(session, row, [])
        session.delete(row)
        return
    if action.name == "syncDevice":
        row.last_sync_date_time = now
        moved = False
        results = []
        for entry in row.device_action_results:
            if entry.get("actionState") == "pending":
                entry = {**entry, "actionState": "done", "lastUpdatedDateTime": iso(now)}
                done = ACTIONS.get(entry.get("actionName", ""))
                if done is not None and done.done_state:
                    row.management_state = done.done_state
                moved = True
            results.append(entry)
        if not moved:
            # A check-in with nothing pending changes no administrative state: the version
            # stays, so an approval request planned against it stays completable.
            return
        row.device_action_results = results
    else:
        assert action.name in RECORDED
        row.management_state = action.pending_state or row.management_state
        row.device_action_results = [*row.device_action_results, _pending(action, now)]
    touch(row, now)


def _action_of(change: Change) -> DeviceAction:
    name = "delete" if change.operation == DELETE else change.action_name or ""
    action = ACTIONS.get(name)
    if action is None or (change.target_ids and name not in BULK_ACTIONS):
        raise ValidationFailed(
            f"'{name}' is not an action on managed devices "
            f"(one of {', '.join(BULK_ACTIONS if change.target_ids else ACTIONS)}).",
            target="actionName",
        )
    parse_body(action.body, change.body)
    return action


class ManagedDevices(CollectionHandler[t.ManagedDevice]):
    """Devices take remote actions (one device or many) besides their inventory edits: this
    handler keeps its own plan and apply, on the shared loading and lock keys."""

    resource = RESOURCE_TYPES[COLLECTION]

    get = staticmethod(get_device)

    def load(self, session: Session, caller: Caller, object_id: str) -> t.ManagedDevice:
        row = session.get(t.ManagedDevice, object_id)
        return visible_or_404(caller, row, p.MANAGED_DEVICES_READ, object_id)

    def plan(self, session: Session, caller: Caller, change: Change, now: datetime) -> Plan:
        if change.operation == CREATE:
            body = parse_body(DeviceBody, _modelled(change.body))
            extra = inventory_properties(change.body)
            caller.require(p.MANAGED_DEVICES_CREATE, body.role_scope_tag_ids)
            check_scope_tags(session, caller.tenant_id, body.role_scope_tag_ids)
            row = _new_device(body, extra, caller.tenant_id, "", now)
            return Plan(ENTITY_TYPE, body.device_name, None, after=device_json(row))
        if change.operation == UPDATE:
            # An edit of the inventory (CSV import) or of Graph's writable properties (PATCH
            # notes, ownership...): not a protected operation.
            row = self.load(session, caller, change.target_id or "")
            check_version(row.version, change.expected_version)
            caller.require(p.MANAGED_DEVICES_UPDATE, row.role_scope_tag_ids)
            columns, changed = _update_of(row, change.body)
            if columns is not None:
                caller.require(p.MANAGED_DEVICES_UPDATE, columns.role_scope_tag_ids)
                check_scope_tags(session, caller.tenant_id, columns.role_scope_tag_ids)
            before = device_json(row)
            return Plan(
                ENTITY_TYPE,
                columns.device_name if columns is not None else row.device_name,
                None,
                entity_keys=(lock_key(COLLECTION, row.id),),
                versions={row.id: row.version},
                before=before,
                after={**before, **changed},
            )
        action = _action_of(change)
        if change.target_ids:
            caller.require(action.permission)
            devices = _sort(session, caller, action, change.target_ids)
            return Plan(
                ENTITY_TYPE,
                ", ".join(d.device_name for d in devices.acted)[:256] or "no device",
                action.policy_type,
                entity_keys=tuple(lock_key(COLLECTION, d.id) for d in devices.acted),
                versions={d.id: d.version for d in devices.acted},
                before={"value": [device_json(d) for d in devices.acted]},
                after={"value": [a for d in devices.acted if (a := _after(d, action, now))]},
            )
        row = self.load(session, caller, change.target_id or "")
        check_version(row.version, change.expected_version)
        caller.require(action.permission, row.role_scope_tag_ids)
        if action.pending_state is not None and row.management_state in LEAVING:
            raise Conflict(
                f"'{row.device_name}' is {row.management_state}; it takes no {action.name}."
            )
        return Plan(
            ENTITY_TYPE,
            row.device_name,
            action.policy_type,
            entity_keys=(lock_key(COLLECTION, row.id),),
            versions={row.id: row.version},
            before=device_json(row),
            after=_after(row, action, now),
        )

    def apply(
        self, session: Session, caller: Caller, change: Change, plan: Plan, now: datetime
    ) -> Result:
        if change.operation == CREATE:
            body = parse_body(DeviceBody, _modelled(change.body))
            extra = inventory_properties(change.body)
            check_scope_tags(session, caller.tenant_id, body.role_scope_tag_ids)
            row = _new_device(body, extra, caller.tenant_id, str(uuid.uuid4()), now)
            session.add(row)
            session.flush()
            set_scope_tags(session, row, body.role_scope_tag_ids)
            return Result(201, device_json(row), row.id)
        if change.operation == UPDATE:
            row = self.get(session, caller.tenant_id, change.target_id or "")
            if plan.versions.get(row.id) != row.version:
                raise Conflict(f"'{row.device_name}' has changed since the update was planned.")
            columns, changed = _update_of(row, change.body)
            if columns is not None:
                check_scope_tags(session, caller.tenant_id, columns.role_scope_tag_ids)
                _update_device(session, row, columns, now)
            else:
                touch(row, now)
            row.properties = {**(row.properties or {}), **changed}
            return Result(204, device_json(row), row.id)
        action = _action_of(change)
        ids = change.target_ids or (change.target_id or "",)
        devices = _sort(session, caller, action, ids)
        moved = [d.device_name for d in devices.acted if plan.versions.get(d.id) != d.version]
        if moved:
            raise Conflict(f"'{moved[0]}' has changed since the action was planned.")
        if not change.target_ids:
            if not devices.acted:
                # It was there when planned; it is gone or changed hands since.
                raise Conflict(f"Managed device '{ids[0]}' can no longer take {action.name}.")
            row = devices.acted[0]
            _act(session, row, action, now)
            return Result(204, None if action.name == "delete" else device_json(row), row.id)
        for row in devices.acted:
            _act(session, row, action, now)
        return Result(
            200,
            {
                "@odata.type": "#microsoft.graph.bulkManagedDeviceActionResult",
                "successfulDeviceIds": [d.id for d in devices.acted],
                "failedDeviceIds": devices.failed,
                "notFoundDeviceIds": devices.not_found,
                "notSupportedDeviceIds": devices.not_supported,
            },
        )


DEVICES = ManagedDevices()  # the CSV import plans and applies through it (catalog lists its own)


def _modelled(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in DEVICE_BODY_NAMES}


def _inventory(body: DeviceBody) -> dict[str, Any]:
    """The body's inventory values by column name."""
    return {to_snake(name): getattr(body, to_snake(name)) for name in INVENTORY}


def _new_device(
    body: DeviceBody, extra: dict[str, Any], tenant_id: str, device_id: str, now: datetime
) -> t.ManagedDevice:
    return t.ManagedDevice(
        properties=extra,
        id=device_id,
        tenant_id=tenant_id,
        **_inventory(body),
        role_scope_tag_ids=list(body.role_scope_tag_ids),
        device_action_results=[],
        created_date_time=now,
        last_modified_date_time=now,
        version=1,
    )


def _update_device(session: Session, row: t.ManagedDevice, body: DeviceBody, now: datetime) -> None:
    for column, value in _inventory(body).items():
        setattr(row, column, value)
    if list(row.role_scope_tag_ids) != list(body.role_scope_tag_ids):
        set_scope_tags(session, row, body.role_scope_tag_ids)
    touch(row, now)


# -- CSV import ------------------------------------------------------------------------------

CSV_COLUMNS = (*INVENTORY, "roleScopeTagIds")


@dataclass(frozen=True)
class Imported:
    """What an import did: devices created, and existing ones (same serial number) updated."""

    created: int
    updated: int


def import_csv(db: Database, caller: Caller, text: str, now: datetime) -> Imported:
    """Import every row of a CSV file in one transaction: a bad row imports nothing and the
    error names its line. Importing is idempotent by serial number: a row whose serialNumber
    names a device the tenant already has updates that device (the cells the row gives replace
    its values, the others stay), so the same file imported twice changes nothing."""
    reader = csv.DictReader(io.StringIO(text))
    unknown = [c for c in reader.fieldnames or () if c not in CSV_COLUMNS]
    if unknown or not reader.fieldnames:
        raise ValidationFailed(
            f"Line 1: unknown column '{unknown[0]}'."
            if unknown
            else "The file has no header line.",
            target="line 1",
        )
    created = updated = 0
    with db.write() as session:
        for record in reader:
            if None in record:
                raise ValidationFailed(f"Line {reader.line_num}: more cells than columns.")
            body: dict[str, Any] = {k: v.strip() for k, v in record.items() if v and v.strip()}
            if "roleScopeTagIds" in body:
                body["roleScopeTagIds"] = [s.strip() for s in body["roleScopeTagIds"].split(";")]
            try:
                existing = _by_serial(session, caller.tenant_id, body.get("serialNumber"))
                if existing is None:
                    change = Change(COLLECTION, CREATE, body=body)
                else:
                    current = {
                        k: v
                        for k, v in device_json(existing).items()
                        if k in CSV_COLUMNS and v is not None
                    }
                    change = Change(
                        COLLECTION,
                        UPDATE,
                        target_id=existing.id,
                        body={**current, **body},
                        expected_version=existing.version,
                    )
                plan = DEVICES.plan(session, caller, change, now)
                apply_planned(DEVICES, session, caller, change, plan, now)
            except DomainError as exc:
                raise ValidationFailed(
                    f"Line {reader.line_num}: {exc.message}", target=exc.target
                ) from None
            if existing is None:
                created += 1
            else:
                updated += 1
            session.flush()  # a later row of the same file finds this serial number
    return Imported(created, updated)


def _by_serial(session: Session, tenant_id: str, serial: str | None) -> t.ManagedDevice | None:
    if not serial:
        return None
    return session.scalars(
        select(t.ManagedDevice)
        .where(t.ManagedDevice.tenant_id == tenant_id, t.ManagedDevice.serial_number == serial)
        .order_by(t.ManagedDevice.created_date_time, t.ManagedDevice.id)
        .limit(1)
    ).first()


def first_administrator(session: Session, tenant_id: str) -> str | None:
    """The tenant's first administrator (the user created with it)."""
    return session.scalar(
        select(t.User.user_principal_name)
        .where(t.User.tenant_id == tenant_id)
        .order_by(t.User.created_date_time, t.User.id)
        .limit(1)
    )
