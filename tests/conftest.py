"""Test fixtures: one database per test run (SQLite file, or a fresh PostgreSQL database when
COUNTERSIGN_TEST_DATABASE_URL names a server), migrated with Alembic; tenants made by factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.store.db import Database
from countersign.store.migrate import upgrade
from tests.factories import TenantFactory
from tests.serving import serving


def _fresh_postgres(server_url: str) -> Iterator[str]:
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    url = server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2id at its smallest cost: the suite hashes and checks hundreds of passwords, and
    the production parameters (about 0.4 s each on a small machine) would dominate its run."""
    from argon2 import PasswordHasher

    from countersign.auth import passwords

    production = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash("not a password")
    yield
    passwords._hasher, passwords._DUMMY_HASH = production


@pytest.fixture(scope="session", autouse=True)
def _private_channel_targets_allowed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """The suite's receivers listen on 127.0.0.1, which channels may only point at when the
    operator allows private targets. Tests of the refusal turn it off
    (`private_targets_refused`)."""
    from countersign.notify import targets

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COUNTERSIGN_ALLOW_PRIVATE_CHANNEL_TARGETS", "true")
        # Every Settings() of the run keeps its checkpoint key and log out of the working tree.
        anchors = tmp_path_factory.mktemp("anchors")
        patch.setenv("COUNTERSIGN_AUDIT_CHECKPOINT_KEY_FILE", str(anchors / "audit-key.pem"))
        patch.setenv("COUNTERSIGN_AUDIT_CHECKPOINT_LOG", str(anchors / "checkpoints.jsonl"))
        targets.configure(True)
        yield
    targets.configure(False)


@pytest.fixture()
def private_targets_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default of a real deployment: channel targets on private addresses are refused."""
    from countersign.notify import targets

    monkeypatch.delenv("COUNTERSIGN_ALLOW_PRIVATE_CHANNEL_TARGETS", raising=False)
    monkeypatch.setattr(targets, "_allow_private", False)


@pytest.fixture(scope="session")
def fresh_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
    """Makes a new empty database each time it is called (for migration tests)."""
    server = os.environ.get("COUNTERSIGN_TEST_DATABASE_URL")
    made: list[Iterator[str]] = []

    def make() -> str:
        if server:
            generator = _fresh_postgres(server)
            made.append(generator)
            return next(generator)
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'fresh.db'}"

    yield make
    for generator in made:
        next(generator, None)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("COUNTERSIGN_TEST_DATABASE_URL")
    if server:
        yield from _fresh_postgres(server)
    else:
        yield f"sqlite:///{Path(tmp_path_factory.mktemp('db')) / 'countersign.db'}"


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        public_url="http://testserver",
        allow_private_channel_targets=True,
    )


@pytest.fixture(scope="session")
def app(settings: Settings, db: Database) -> FastAPI:
    return create_app(settings, db)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture()
def tenants(client: TestClient, db: Database) -> TenantFactory:
    return TenantFactory(client, db)


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Callable[..., Any]:
    """Runs a `countersign` operator command against the test database: cli("audit", "verify")."""
    from typer.testing import CliRunner

    from countersign.cli import app as command

    monkeypatch.setenv("COUNTERSIGN_DATABASE_URL", database_url)
    runner = CliRunner()
    return lambda *args: runner.invoke(command, list(args))


@pytest.fixture()
def import_devices(cli: Callable[..., Any], tmp_path: Path) -> Callable[..., Any]:
    """`countersign devices import` of a CSV file with this text: import_devices(text, tenant)."""
    csv = tmp_path / "devices.csv"

    def run(text: str, tenant_id: str, *options: str) -> Any:
        csv.write_text(text)
        return cli("devices", "import", str(csv), "--tenant", tenant_id, *options)

    return run


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[str]:
    """The test app over real HTTP for the session (CLI tests and browser tests talk to it)."""
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"
