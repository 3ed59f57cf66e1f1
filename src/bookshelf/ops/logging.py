"""Logging: structlog; JSON lines in production, readable lines in development. The standard
library's loggers (uvicorn, SQLAlchemy, Alembic) are routed through one formatter, configured
once per process (``configure_logging``), and the access log (``AccessLog``, built by each
app) writes the same shape, so every line looks alike and carries the request id.

Secrets never reach a line: values under sensitive keys are masked, and anything that looks
like a bearer token, a JWT, a password hash or a ``token=`` parameter (the links in mails) is
masked wherever it appears: message, arguments, exception text, structured fields. One
exception, in development only: the lines of the log mail transport (``MAIL_LOG``) keep their
links, so a newcomer can follow them without a mail server.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any

import structlog
from pydantic_core import to_json

from bookshelf.ops.request_id import current_request_id

_SENSITIVE_KEY = re.compile(r"pass(word)?|secret|token|authorization|cookie|api[_-]?key", re.I)
_TOKEN_LIKE = re.compile(
    r"(?i)bearer\s+[\w.~+/=-]+|eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*|\$argon2id?\$[^\s\"']+"
)
# ?token=…, &reset_token=…: the value up to the next separator (the name stays readable).
_TOKEN_PARAMETER = re.compile(r"(?i)(token=)[^\s&#\"']+")
MASK = "[redacted]"
# The logger of the log mail transport (mail/transports.py).
MAIL_LOG = "bookshelf.mail.log"


def redact_text(text: str, *, links: bool = False) -> str:
    """``text`` with every token-like value masked; ``links=True`` spares the ``token=``
    parameters (the log mail transport's lines, in development)."""
    text = _TOKEN_LIKE.sub(MASK, text)
    return text if links else _TOKEN_PARAMETER.sub(rf"\g<1>{MASK}", text)


def _redact(value: Any, links: bool) -> Any:
    if isinstance(value, str):
        return redact_text(value, links=links)
    if isinstance(value, dict):
        return {
            key: MASK if _SENSITIVE_KEY.search(str(key)) else _redact(item, links)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, links) for item in value]
    if isinstance(value, BaseException):  # a field holding an error: its text is rendered
        return redact_text(str(value), links=links)
    return value


def _redact_event(event: MutableMapping[str, Any], *, links: bool) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = MASK if _SENSITIVE_KEY.search(key) else _redact(event[key], links)
    return event


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field of the event."""
    return _redact_event(event, links=False)


def _redact_secrets_but_mail_links(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """``redact_secrets``, except that the log mail transport's lines keep their links
    (development only: see ``configure_logging``)."""
    return _redact_event(event, links=event.get("logger") == MAIL_LOG)


class _BookshelfHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring again replaces only it."""


ACCESS_LOGGER_NAME = "bookshelf.access"


# What every line starts with, whether it comes through the root handler or the access log.
def _add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The id of the request being served, on every line logged while serving it."""
    request_id = current_request_id.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    _add_request_id,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _json_line(event: Any, **_options: Any) -> str:
    return to_json(event).decode()


def _renderer(*, json: bool) -> Any:
    if json:
        # pydantic-core's encoder: the same JSON as the standard library's, several times faster.
        return structlog.processors.JSONRenderer(serializer=_json_line)
    # Plain tracebacks: the default (rich) one prints each frame's local variables, which can
    # hold passwords and tokens.
    return structlog.dev.ConsoleRenderer(
        colors=False, exception_formatter=structlog.dev.plain_traceback
    )


class AccessLog:
    """The one access event per request, in the format ``configure_logging`` gives every other
    line, written to the stderr of the moment the app was built.

    Off the request's path: the pipeline hands over the fields it collected (``add``), and the
    events are rendered and written in a callback after the response went out, every event of
    one turn of the event loop in a single write. The event skips the standard library (two
    LogRecords, a caller lookup, a lock) and the redaction pass: its fields are ours (method,
    route template, status, duration, user id, address, request id), never a header, query
    string or body. It changes no global state: each app builds its own.
    """

    def __init__(self, level: str, *, json: bool) -> None:
        self.enabled = logging.getLevelName(level) <= logging.INFO
        self._stream = sys.stderr
        self._timestamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
        self._render = _renderer(json=json)
        self._pending: list[dict[str, Any]] = []

    def add(self, **fields: Any) -> None:
        """Queue one request's event; written once the current callbacks have run."""
        if not self.enabled:
            return
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(fields)

    def flush(self) -> None:
        events, self._pending = self._pending, []
        if not events:
            return
        lines = []
        for fields in events:
            event = {"event": "request", **fields, "level": "info", "logger": ACCESS_LOGGER_NAME}
            lines.append(self._render(None, "info", self._timestamp(None, "info", event)))
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()


class ContextAccessLog(AccessLog):
    """The access log with processors that read the request's context (the trace ids, with
    tracing on). They run in ``add``, while the request's context is current, not in the later
    ``flush``; a subclass, so the access log without them does not even loop over none."""

    def __init__(self, level: str, *, json: bool, context: Sequence[Any]) -> None:
        super().__init__(level, json=json)
        self._context = tuple(context)

    def add(self, **fields: Any) -> None:
        for processor in self._context:
            processor(None, "info", fields)
        super().add(**fields)


def configure_logging(
    level: str, *, json: bool, show_mail_links: bool = False, context: Sequence[Any] = ()
) -> None:
    """Process-wide: route every standard-library logger through one handler on the root
    logger, writing to the current stderr. Called once when a process starts serving (see
    ``bookshelf.main.create_app_for_process``); calling it again replaces the handler it
    installed before, leaving any other (such as pytest's capture) alone.
    ``show_mail_links`` (development only): the log mail transport's lines keep their links.
    ``context``: more processors for every line (the trace ids, with tracing on)."""
    shared = [*_SHARED, *context]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # The traceback becomes text before the redaction reads it, in both formats.
            structlog.processors.format_exc_info,
            _redact_secrets_but_mail_links if show_mail_links else redact_secrets,
            _renderer(json=json),
        ],
    )
    handler = _BookshelfHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BookshelfHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Our access log replaces uvicorn's; its other loggers go through the root handler.
    for name in ("uvicorn", "uvicorn.error", "sqlalchemy.engine", "alembic"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Without a handler (none of its own, none inherited): uvicorn asks once per connection
    # whether it has one, and if so formats every response's line (quoting its path) before
    # the logger drops it.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
    # Alembic narrates every migration context (the readiness probe opens one each time).
    logging.getLogger("alembic").setLevel(logging.WARNING)
