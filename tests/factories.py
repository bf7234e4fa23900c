"""Test data through the public API (and the tenant-creation service), never raw inserts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select

from countersign.cli import save_credentials
from countersign.services.tenants import create_tenant
from countersign.store.db import Database

PASSWORD = "Correct-Horse-9"


def count_rows(db: Database, table: Any, *where: Any) -> int:
    """How many rows of `table` match `where`, read in a transaction of its own."""
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(table).where(*where)) or 0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def as_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, who: Principal) -> None:
    """The `countersign` command signed in to `url` as `who` (a config folder of their own)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / who.id))
    save_credentials({"url": url, "username": who.upn, "access_token": who.token})


@dataclass
class Principal:
    id: str
    upn: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Tenant:
    """A tenant made for one test, with its first administrator signed in."""

    client: TestClient
    id: str
    admin: Principal
    roles: dict[str, str]
    domain: str
    groups: dict[str, str] = field(default_factory=dict)

    # -- raw calls as someone ---------------------------------------------------------
    def call(self, method: str, path: str, who: Principal | None = None, **kwargs: Any) -> Response:
        who = who or self.admin
        headers = {**who.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, who: Principal | None = None, **kwargs: Any) -> Any:
        response = self.call(method, path, who, **kwargs)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    # -- directory ----------------------------------------------------------------------
    def sign_in(self, upn: str, password: str = PASSWORD) -> Principal:
        response = self.client.post(
            "/oauth2/token", data={"grant_type": "password", "username": upn, "password": password}
        )
        assert response.status_code == 200, response.text
        me = self.client.get(
            "/beta/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
        ).json()
        return Principal(me["id"], upn, response.json()["access_token"])

    def user(
        self,
        name: str | None = None,
        roles: tuple[str, ...] = (),
        scope_tags: tuple[str, ...] = ("0",),
        groups: tuple[str, ...] = (),
    ) -> Principal:
        """A new signed-in user holding `roles` (built-in names) over `scope_tags`."""
        name = name or unique("user")
        upn = f"{name}@{self.domain}".lower()
        created = self.ok(
            "POST",
            "/beta/users",
            json={
                "displayName": name,
                "userPrincipalName": upn,
                "accountEnabled": True,
                "passwordProfile": {"password": PASSWORD},
            },
        )
        for role in roles:
            group_id = self.group(unique(f"{role}-holders"))
            self.add_member(group_id, created["id"])
            self.assign(role, [group_id], scope_tags)
        for group_id in groups:
            self.add_member(group_id, created["id"])
        return self.sign_in(upn)

    def group(self, name: str, security: bool = True, mail: bool = False) -> str:
        group_id: str = self.ok(
            "POST",
            "/beta/groups",
            json={"displayName": name, "securityEnabled": security, "mailEnabled": mail},
        )["id"]
        self.groups[name] = group_id
        return group_id

    def device(self, name: str, serial: str, **properties: Any) -> dict[str, Any]:
        """A Windows 11 device in the inventory; `properties` add to or override its body."""
        body = {
            "deviceName": name,
            "operatingSystem": "Windows",
            "osVersion": "10.0.22631",
            "serialNumber": serial,
            **properties,
        }
        created: dict[str, Any] = self.ok(
            "POST", "/beta/deviceManagement/managedDevices", json=body
        )
        return created

    def role_definition(self, name: str, actions: list[str], scope_tags: list[str]) -> str:
        """A custom role allowing `actions`, carrying `scope_tags`; its id."""
        role_id: str = self.ok(
            "POST",
            "/beta/deviceManagement/roleDefinitions",
            json={
                "displayName": name,
                "rolePermissions": [{"resourceActions": [{"allowedResourceActions": actions}]}],
                "roleScopeTagIds": scope_tags,
            },
        )["id"]
        return role_id

    def add_member(self, group_id: str, member_id: str) -> None:
        self.ok(
            "POST",
            f"/beta/groups/{group_id}/members/$ref",
            json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{member_id}"},
        )

    def assign(self, role: str, group_ids: list[str], scope_tags: tuple[str, ...] = ("0",)) -> str:
        role_id = self.roles.get(role, role)
        assignment_id: str = self.ok(
            "POST",
            "/beta/deviceManagement/roleAssignments",
            json={
                "displayName": unique("assignment"),
                "members": group_ids,
                "roleScopeTagIds": list(scope_tags),
                "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role_id}')",
            },
        )["id"]
        return assignment_id

    def scope_tag(self, name: str) -> str:
        tag_id: str = self.ok(
            "POST", "/beta/deviceManagement/roleScopeTags", json={"displayName": name}
        )["id"]
        return tag_id

    def service_principal(self, name: str | None = None, roles: tuple[str, ...] = ()) -> Principal:
        sp = self.ok("POST", "/beta/servicePrincipals", json={"displayName": name or unique("app")})
        secret = self.ok("POST", f"/beta/servicePrincipals/{sp['id']}/addPassword", json={})[
            "secretText"
        ]
        for role in roles:
            group_id = self.group(unique(f"{role}-apps"))
            self.add_member(group_id, sp["id"])
            self.assign(role, [group_id])
        response = self.client.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sp["appId"],
                "client_secret": secret,
            },
        )
        assert response.status_code == 200, response.text
        return Principal(sp["id"], sp["appId"], response.json()["access_token"])


class TenantFactory:
    def __init__(self, client: TestClient, db: Database):
        self.client = client
        self.db = db

    def __call__(self, name: str | None = None) -> Tenant:
        domain = f"{unique('t')}.example"
        with self.db.write() as session:
            created = create_tenant(
                session,
                name or domain,
                f"admin@{domain}",
                PASSWORD,
                admin_display_name="Administrator 1",
            )
        tenant = Tenant(
            self.client,
            created.tenant_id,
            Principal(created.admin_id, created.admin_upn, ""),
            created.roles,
            domain,
        )
        tenant.admin = tenant.sign_in(created.admin_upn)
        return tenant


# -- tokens and database counts (for the security and bad-input tests) ----------------------


def mint_token(
    claims: dict[str, Any], key: Any, *, kid: str | None = None, algorithm: str = "RS256"
) -> str:
    """A JWT signed with `key` (an RSA private key, or None for alg 'none')."""
    import jwt

    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def rsa_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def row_counts(db: Database, tenant_id: str) -> dict[str, int]:
    """How many rows of each tenant-owned table the tenant has, and its audit sequence."""
    from countersign.store import tables as t

    counts: dict[str, int] = {}
    with db.read() as session:
        for table in t.Base.metadata.sorted_tables:
            if "tenant_id" in table.c:
                counts[table.name] = (
                    session.scalar(
                        select(func.count())
                        .select_from(table)
                        .where(table.c.tenant_id == tenant_id)
                    )
                    or 0
                )
        tenant = session.get(t.Tenant, tenant_id)
        assert tenant is not None
        counts["audit_sequence"] = tenant.audit_sequence
        counts["directory_version"] = tenant.directory_version
    return counts
