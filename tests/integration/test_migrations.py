"""Alembic migrations: upgrade, downgrade, upgrade on the test database, models equal to the
migrated schema, and readiness that depends on both."""

from __future__ import annotations

from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.store.db import Database, make_engine
from countersign.store.migrate import downgrade, migrations_current, upgrade
from countersign.store.tables import Base


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url)
    assert _tables(url) == set()
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    engine = make_engine(url)
    try:
        assert migrations_current(engine)
    finally:
        engine.dispose()


def test_models_match_the_migrations(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "run `make migration`: the models and migrations differ"


def test_healthz_is_always_up(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_readyz_when_migrated(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text


def test_readyz_refuses_an_unmigrated_database(fresh_database_url: Callable[[], str]) -> None:
    url = fresh_database_url()
    db = Database(url)
    try:
        with TestClient(create_app(Settings(database_url=url), db)) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["database"] == "migrations pending"
            assert client.get("/healthz").status_code == 200
            upgrade(url)
            assert client.get("/readyz").status_code == 200
    finally:
        db.dispose()


def test_readyz_when_the_database_is_unreachable() -> None:
    url = "postgresql://nobody@127.0.0.1:1/nothing"
    db = Database(url)
    try:
        with TestClient(create_app(Settings(database_url=url), db)) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            assert "nobody" not in response.text
    finally:
        db.dispose()
