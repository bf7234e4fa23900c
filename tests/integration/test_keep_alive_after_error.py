"""After an unhandled error the server keeps the client's keep-alive connection usable: the
500 is answered inside the application, so no exception reaches Uvicorn (which would drop the
connection). Served by a real Uvicorn on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from countersign.api.app import create_app
from countersign.config import Settings
from countersign.store.db import Database
from tests.serving import serving


@pytest.fixture()
def exploding_server(settings: Settings, db: Database) -> Iterator[int]:
    app: FastAPI = create_app(settings, db)

    def explode() -> None:
        raise RuntimeError("SELECT secret FROM somewhere")

    app.add_api_route("/beta/explode", explode)
    with serving(app, log_level="critical") as port:
        yield port


def test_the_connection_survives_a_500(exploding_server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", exploding_server, timeout=30)
    try:
        connection.request("GET", "/beta/explode", headers={"client-request-id": "mine-2"})
        failed = connection.getresponse()
        body = json.loads(failed.read())
        assert failed.status == 500
        assert body["error"]["code"] == "InternalServerError"
        assert "SELECT" not in json.dumps(body)
        assert failed.getheader("client-request-id") == "mine-2"
        assert (failed.getheader("connection") or "").lower() != "close"
        first_socket = connection.sock
        assert first_socket is not None  # http.client closes it when the server will
        connection.request("GET", "/healthz")
        healthy = connection.getresponse()
        healthy.read()
        assert healthy.status == 200
        assert connection.sock is first_socket  # the same connection, not a reconnect
    finally:
        connection.close()
