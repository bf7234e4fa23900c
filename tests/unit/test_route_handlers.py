"""Every endpoint is a plain function: FastAPI runs those in its thread pool. An `async def`
endpoint that queries the database or hashes a password would block the event loop, and with it
every other request of the process."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute

from countersign.api.app import create_app
from countersign.config import Settings


def test_no_endpoint_runs_on_the_event_loop() -> None:
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    coroutines = [
        f"{sorted(route.methods)} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and inspect.iscoroutinefunction(route.endpoint)
    ]
    assert coroutines == []
