"""The one Graph error mapping: even an unexpected failure answers in Graph's shape, with the
request ids, and without internals."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.store.db import Database


def test_an_unexpected_error_is_a_graph_500_without_internals(
    settings: Settings, db: Database
) -> None:
    app: FastAPI = create_app(settings, db)

    def explode() -> None:
        raise RuntimeError("SELECT secret FROM somewhere")

    app.add_api_route("/beta/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/beta/explode", headers={"client-request-id": "mine-1"})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "InternalServerError"
    assert "SELECT" not in response.text and "RuntimeError" not in response.text
    assert error["innerError"]["client-request-id"] == "mine-1"
    assert response.headers["client-request-id"] == "mine-1"
    assert response.headers["request-id"] == error["innerError"]["request-id"]
