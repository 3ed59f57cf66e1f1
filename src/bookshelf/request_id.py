"""Request ids: every request gets one, every response and log line carries it.

A client (or the load balancer) may send ``X-Request-ID``; a well-formed value is kept so one id
follows the request across services, anything else is replaced by a fresh random id.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
_WELL_FORMED = re.compile(rb"^[A-Za-z0-9._:-]{8,128}$")

# Each ASGI request runs in its own task, so a value set here never leaks into another request.
current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER_KEY and _WELL_FORMED.match(value):
                request_id = value.decode("ascii")
                break
        if request_id is None:
            request_id = uuid.uuid4().hex
        current_request_id.set(request_id)
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (_HEADER_KEY, encoded)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class RequestIdLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


def configure_logging(level: str) -> None:
    """Send Bookshelf's logs to stderr with the request id, once per process."""
    logger = logging.getLogger("bookshelf")
    logger.setLevel(level)
    if any(isinstance(h, _BookshelfHandler) for h in logger.handlers):
        return
    handler = _BookshelfHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    logger.addHandler(handler)


class _BookshelfHandler(logging.StreamHandler):  # type: ignore[type-arg]
    pass
