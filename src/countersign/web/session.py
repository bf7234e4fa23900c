"""The signed-in administrator of one admin center request (WebSession): who, the CSRF token,
the tenant's name, the app context and the moment the request is served at (the app's clock).

Its own module so that web/engine.py and web/core.py can both name it: core renders pages and
calls engine (the "waiting for me" count), engine calls the services; neither imports the
other back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from countersign.api.deps import Context
from countersign.domain.actors import Caller


@dataclass
class WebSession:
    """The signed-in administrator of one admin center request."""

    caller: Caller
    csrf_token: str
    tenant_name: str
    ctx: Context
    now: datetime
