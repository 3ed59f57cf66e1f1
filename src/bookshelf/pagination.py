"""Opaque keyset cursors and the ``Link`` header of a page.

A cursor is base64url-encoded JSON naming the sort it was made for and the sort key of the last
row served. It is opaque to clients (the format may change) but carries nothing secret, so it is
not signed: a forged cursor can only move the client's own position in a public list.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from bookshelf.exceptions import InvalidRequest

_CURSOR_VERSION = 1


class InvalidCursor(InvalidRequest):
    title = "Invalid cursor"
    slug = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__(
            "The cursor is not one this list issued for this sort order; "
            "start again without a cursor."
        )


def encode_cursor(sort: str, key: list[Any]) -> str:
    payload = json.dumps([_CURSOR_VERSION, sort, key], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(token: str, *, sort: str) -> list[Any]:
    """Return the sort key in ``token``; raise ``InvalidCursor`` if it is malformed or foreign."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidCursor() from None
    if (
        not isinstance(payload, list)
        or len(payload) != 3
        or payload[0] != _CURSOR_VERSION
        or payload[1] != sort
        or not isinstance(payload[2], list)
    ):
        raise InvalidCursor()
    key: list[Any] = payload[2]
    return key
