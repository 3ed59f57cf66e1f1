"""WAL positions (LSNs), for read-your-writes with replicas (``db.replicas``, ``db.routing``).

Positions travel as PostgreSQL prints them (``16/B374D848``) and are compared as integers. The
position a request's commit reached is left in ``COMMIT_POSITION``, a holder the routing
middleware sets per request: without one (the CLI, the worker, no replicas configured) a commit
asks for no position at all, so it costs nothing there.
"""

from __future__ import annotations

from contextvars import ContextVar

# [the position the request's last commit reached]: None while nothing was committed, "" when
# a commit happened but its position could not be read (the writer is still remembered).
COMMIT_POSITION: ContextVar[list[str | None] | None] = ContextVar(
    "bookshelf_commit_position", default=None
)
# The longest LSN text: two 32-bit hex halves and the slash.
_MAX_POSITION_LENGTH = 17


def parse_position(text: str | None) -> int | None:
    """An LSN (``16/B374D848``) as an integer, or None when ``text`` is not one."""
    if not text or len(text) > _MAX_POSITION_LENGTH:
        return None
    high, slash, low = text.partition("/")
    if not slash or not high or not low:
        return None
    try:
        high_value, low_value = int(high, 16), int(low, 16)
    except ValueError:
        return None
    if high_value < 0 or low_value < 0 or low_value >= 1 << 32 or high_value >= 1 << 32:
        return None
    return (high_value << 32) | low_value
