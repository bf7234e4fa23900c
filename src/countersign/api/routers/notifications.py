"""/beta/deviceManagement/notificationChannels (a Countersign extension): list, get, create,
update, delete, and `POST {id}/sendTestMessage`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from countersign.api.collections import CollectionSpec, mount
from countersign.api.deps import base_url, context, current_caller
from countersign.api.errors import graph_error
from countersign.api.odata import Field, columns
from countersign.domain import permissions as p
from countersign.domain.actors import Caller
from countersign.services.handlers import notification_channels as nc
from countersign.store import tables as t

router = APIRouter(prefix="/beta", tags=["notifications"])

CHANNELS = CollectionSpec(
    path="/deviceManagement/notificationChannels",
    collection="notificationChannels",
    table=t.NotificationChannel,
    serialize=nc.channel_json,
    read_permission=p.ORGANIZATION_READ,
    get_row=nc.get_channel,
    fields={
        **columns(t.NotificationChannel, "id", "displayName", "enabled", "createdDateTime"),
        "channelType": Field(t.NotificationChannel.kind),
    },
)
mount(router, CHANNELS)


@router.post("/deviceManagement/notificationChannels/{channel_id}/sendTestMessage")
def send_test_message(
    channel_id: str, request: Request, caller: Caller = Depends(current_caller)
) -> Any:
    """Deliver a test message now; 200 when the channel accepted it, 502 with its answer if not."""
    ctx = context(request)
    try:
        nc.send_test_message(
            ctx.db.read,
            caller,
            channel_id,
            public_url=ctx.settings.public_url,
            timeout=ctx.settings.delivery_timeout_seconds,
        )
    except nc.DeliveryFailed as exc:
        return graph_error(
            request, 502, "BadGateway", f"The channel did not accept the message: {exc}"
        )
    return JSONResponse(
        {
            "@odata.context": f"{base_url(request)}/beta/$metadata#Edm.String",
            "value": "Test message delivered.",
        }
    )
