"""Next and previous links over the API's keyset cursors.

A cursor only goes forward, so a page's address also carries the trail of cursors that led to
it (``trail``: the cursors of the pages before, ``0`` for the first): "previous" is the last
one, and "next" adds the page's own. The trail keeps the last ``MAX_TRAIL`` steps; a visitor
who goes further back than that lands on the first page. A trail that is not one (a hand-made
address) is ignored, like an absent one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

MAX_TRAIL = 20
FIRST_PAGE = "0"
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,1000}")


@dataclass(frozen=True)
class Pager:
    previous: str | None
    next: str | None


def read_trail(raw: str | None) -> list[str]:
    if not raw:
        return []
    steps = raw.split(".")
    if len(steps) > MAX_TRAIL or not all(_CURSOR.fullmatch(step) for step in steps):
        return []
    return steps


def _link(path: str, query: Sequence[tuple[str, str]], extra: list[tuple[str, str]]) -> str:
    parts = [*query, *extra]
    return f"{path}?{urlencode(parts)}" if parts else path


def pager(
    path: str,
    query: Sequence[tuple[str, str]],
    *,
    cursor: str | None,
    trail: list[str],
    next_cursor: str | None,
    cursor_key: str = "cursor",
    trail_key: str = "trail",
) -> Pager:
    """The links of the pages around the one ``cursor`` named (``query``: the rest of its
    parameters, kept)."""
    previous = None
    if cursor is not None:
        back = trail[-1] if trail else FIRST_PAGE
        extra = [] if back == FIRST_PAGE else [(cursor_key, back)]
        if len(trail) > 1:
            extra.append((trail_key, ".".join(trail[:-1])))
        previous = _link(path, query, extra)
    following = None
    if next_cursor is not None:
        steps = [*trail, cursor or FIRST_PAGE][-MAX_TRAIL:]
        following = _link(path, query, [(cursor_key, next_cursor), (trail_key, ".".join(steps))])
    return Pager(previous, following)
