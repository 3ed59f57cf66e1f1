"""Request ids: accepted from ``X-Request-ID`` when well-formed (so one id follows a request
across services), generated otherwise."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
HEADER_KEY = HEADER.lower().encode()
_WELL_FORMED = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")

# Each ASGI request runs in its own task, so a value set here never leaks into another request.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def well_formed_request_id(sent: bytes | None) -> str:
    """The id the client sent, if well-formed (it ends up in logs); a new one otherwise."""
    if sent is not None and _WELL_FORMED.match(sent):
        return sent.decode("ascii")
    return uuid.uuid4().hex
