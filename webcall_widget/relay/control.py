"""Control messages to live calls, from any process (the admin's "End selected calls")."""

from __future__ import annotations

import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ImproperlyConfigured


def call_group(call_id: uuid.UUID | str) -> str:
    """The channel-layer group the relay consumer of one call listens on."""
    hex_id = call_id.hex if isinstance(call_id, uuid.UUID) else uuid.UUID(str(call_id)).hex
    return f"webcall-call-{hex_id}"


async def aend_call(call_id: uuid.UUID | str) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("Ending calls needs CHANNEL_LAYERS (channels_redis).")
    await layer.group_send(call_group(call_id), {"type": "webcall.end"})


def end_call(call_id: uuid.UUID | str) -> None:
    """Ask whichever process holds the call to end it; nothing happens if none does."""
    async_to_sync(aend_call)(call_id)
