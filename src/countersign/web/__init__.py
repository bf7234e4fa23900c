"""The web admin center (SPEC §7): server-rendered pages under /admin (Jinja2 + htmx).

Pages call the same services as the API (services/changes.py, services/gate.py,
the approval use cases), so every rule holds the same way in the browser.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_PATH = "/admin/static"


def install(app: FastAPI) -> None:
    """Mount the admin center's static files and pages on the app."""
    from countersign.web import approvals, assignments, channels, members, objects, signin
    from countersign.web.core import STATIC_DIR

    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="admin-static")
    app.include_router(signin.public_router, include_in_schema=False)
    app.include_router(signin.router, include_in_schema=False)
    app.include_router(approvals.router, include_in_schema=False)
    app.include_router(channels.router, include_in_schema=False)
    app.include_router(members.router, include_in_schema=False)
    app.include_router(assignments.router, include_in_schema=False)
    # Last: its /admin/{slug} pages would otherwise shadow the fixed paths above.
    app.include_router(objects.router, include_in_schema=False)
