"""Opaque keyset cursors: encoded, decoded and validated here, for every paginated list.

A cursor is base64url-encoded JSON ``[version, sort, key]``: the sort it was made for and the
sort key of the last row served. It is opaque to clients (the format may change) but carries
nothing secret, so it is not signed: a forged cursor can only move the client's own position in
a public list. Forged it may be, though, so every list declares the type of its key as a
``CursorSchema`` and the key is validated on decode, strictly, before any value reaches SQL:
a value the database cannot bind (a timestamp that overflows when converted to UTC, a NUL,
which PostgreSQL refuses in text, a lone surrogate, which UTF-8 cannot carry, a non-finite or
huge number) is a 422 ``invalid-cursor`` problem, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, Field, TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Integer, Select, bindparam, tuple_

from bookshelf.exceptions import InvalidCursor

_CURSOR_VERSION = 1
# Names of a page's bound parameters: the cursor's key parts, and the limit.
_AFTER, _LIMIT = "page_after_", "page_limit"
# A cursor query parameter is at most 1000 characters, so no key part needs to be longer.
_MAX_TEXT = 1000
# Largest integer both databases store (PostgreSQL bigint, SQLite INTEGER).
_INT64 = 2**63

_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _storable_text(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("text holds a NUL or an unpaired surrogate")
    return value


def _utc(value: datetime) -> datetime:
    # An offset can push an in-range local time out of datetime's range once in UTC (year 0 or
    # 10000); that would be an OverflowError when the value is bound, so fail on decode instead.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range in UTC") from None


# The parts a sort key is made of. Each is what its column can bind on both databases.
CursorText = Annotated[str, Field(max_length=_MAX_TEXT), AfterValidator(_storable_text)]
CursorTimestamp = Annotated[AwareDatetime, AfterValidator(_utc)]
CursorDate = date
# JSON has no NaN or Infinity, yet parsers read them; no rank is ever non-finite.
CursorNumber = Annotated[float, Field(allow_inf_nan=False)]
CursorInteger = Annotated[int, Field(ge=-_INT64, lt=_INT64)]
CursorId = UUID

KeyT = TypeVar("KeyT", bound=tuple[Any, ...])
RowT = TypeVar("RowT")


class CursorSchema(Generic[KeyT]):
    """The typed sort key of one ordering of one list, and its cursors.

    The key is a tuple of the ``Cursor*`` parts above (ending with the row id that makes the
    order total), e.g. ``CursorSchema("-created_at", CursorTimestamp, CursorId)``. Decoding is
    strict: a string where a number belongs, a number where a timestamp belongs, or a key of
    another length is refused.
    """

    def __init__(self, sort: str, *parts: Any) -> None:
        self.sort = sort
        # Built at run time from the parts (a type checker sees only KeyT).
        envelope: Any = tuple.__class_getitem__((int, str, tuple.__class_getitem__(parts)))
        self._envelope: TypeAdapter[tuple[int, str, KeyT]] = TypeAdapter(envelope)

    def encode(self, key: KeyT) -> str:
        payload = self._envelope.dump_json((_CURSOR_VERSION, self.sort, key))
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    def page(
        self,
        statement: Select[Any],
        columns: Sequence[ColumnElement[Any]],
        *,
        descending: bool,
        cursor: str | None,
        limit: int,
    ) -> tuple[Select[Any], dict[str, Any]]:
        """``statement`` ordered by ``columns`` (the key, ending with the id), resumed after
        ``cursor``, fetching one row more than ``limit`` to tell whether a next page exists
        (no COUNT), and the values of its parameters. The skip is a row-value comparison,
        which an index on ``columns`` serves however deep the page."""
        template = self.page_template(
            statement, columns, descending=descending, resumed=cursor is not None
        )
        return template, self.page_values(cursor, limit)

    def page_template(
        self,
        statement: Select[Any],
        columns: Sequence[ColumnElement[Any]],
        *,
        descending: bool,
        resumed: bool,
    ) -> Select[Any]:
        """``page`` with its values left as bound parameters (``page_values`` has them): a
        statement to build once per shape and run with each request's values."""
        if resumed:
            row = tuple_(*columns)
            boundary = tuple_(
                *(
                    bindparam(f"{_AFTER}{position}", type_=column.type)
                    for position, column in enumerate(columns)
                )
            )
            statement = statement.where(row < boundary if descending else row > boundary)
        ordered = [column.desc() if descending else column.asc() for column in columns]
        return statement.order_by(*ordered).limit(bindparam(_LIMIT, type_=Integer))

    def page_values(self, cursor: str | None, limit: int) -> dict[str, Any]:
        """The values of ``page_template``'s parameters: the cursor's key and the limit (one
        row more, see ``page``). ``InvalidCursor`` for a bad cursor."""
        values: dict[str, Any] = {_LIMIT: limit + 1}
        if cursor is not None:
            for position, value in enumerate(self.decode(cursor)):
                values[f"{_AFTER}{position}"] = value
        return values

    def next_cursor(
        self, rows: Sequence[RowT], limit: int, key_of: Callable[[RowT], KeyT]
    ) -> str | None:
        """The cursor of the page after the first ``limit`` of ``rows`` (fetched by ``page``,
        one extra), or None when there is no next page."""
        if len(rows) <= limit:
            return None
        return self.encode(key_of(rows[limit - 1]))

    def decode(self, token: str) -> KeyT:
        """The key in ``token``; ``InvalidCursor`` if it is malformed, foreign or unbindable."""
        try:
            padded = token + "=" * (-len(token) % 4)
            payload = base64.urlsafe_b64decode(padded.encode("ascii"))
            version, sort, key = self._envelope.validate_json(payload, strict=True)
        except (ValueError, UnicodeError, binascii.Error, ValidationError):
            raise InvalidCursor() from None
        if version != _CURSOR_VERSION or sort != self.sort:
            raise InvalidCursor()
        return key
