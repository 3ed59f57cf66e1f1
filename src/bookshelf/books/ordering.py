"""Sort orders of the book list and keyset pagination over them.

Every order ends with the book id, so the order is total and a page boundary is exact: the next
page is ``(sort_key, id) > (last sort_key, last id)`` (``<`` when descending), a row comparison
that an index on ``(sort_key, id)`` serves at any depth, unlike OFFSET.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, Select, bindparam, tuple_

from bookshelf.books.models import books
from bookshelf.books.schemas import BookSort
from bookshelf.pagination import InvalidCursor, decode_cursor, encode_cursor

# PostgreSQL cannot take NUL characters, and UTF-8 cannot carry lone surrogates.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _aware_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    if parsed.tzinfo is None:
        raise ValueError("naive timestamp")
    # Normalised here: an offset that pushes the instant out of range fails now, not in SQL.
    return parsed.astimezone(UTC)


def _date(value: Any) -> date:
    return date.fromisoformat(_text(value))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or _UNSTORABLE.search(value):
        raise ValueError("not a storable string")
    return value


@dataclass(frozen=True)
class _Order:
    column_name: str
    descending: bool
    # Turns a JSON value from a cursor back into a value of the sort column.
    parse: Callable[[Any], Any]


_ORDERS = {
    BookSort.TITLE: _Order("sort_title", False, _text),
    BookSort.TITLE_DESC: _Order("sort_title", True, _text),
    BookSort.PUBLISHED_DATE: _Order("published_sort", False, _date),
    BookSort.PUBLISHED_DATE_DESC: _Order("published_sort", True, _date),
    BookSort.CREATED_AT: _Order("created_at", False, _aware_datetime),
    BookSort.CREATED_AT_DESC: _Order("created_at", True, _aware_datetime),
    BookSort.RELEVANCE: _Order("rank", True, _number),
}


@dataclass(frozen=True)
class PageRequest:
    sort: BookSort
    cursor: str | None
    limit: int


def _parse_cursor(page: PageRequest, order: _Order) -> tuple[Any, UUID] | None:
    if page.cursor is None:
        return None
    key = decode_cursor(page.cursor, sort=page.sort.value)
    try:
        if len(key) != 2 or not isinstance(key[1], str):
            raise ValueError("malformed key")
        return order.parse(key[0]), UUID(key[1])
    except (ValueError, TypeError, OverflowError):
        raise InvalidCursor() from None


def apply_order(
    statement: Select[Any],
    page: PageRequest,
    *,
    ranked_by: tuple[ColumnElement[Any], ColumnElement[Any]] | None = None,
) -> Select[Any]:
    """Order ``statement`` by the page's sort, skip to its cursor, and fetch one row extra.

    The extra row tells whether a next page exists without a COUNT. The sort key is selected as
    ``sort_key`` so the next cursor can be made from the last row. ``sort=relevance`` orders by
    ``ranked_by``, the ``(rank, id)`` columns of the search's candidates subquery: ordering and
    skipping on the subquery's own columns lets the database sort the candidates and join only
    the page's rows to ``books``.
    """
    order = _ORDERS[page.sort]
    after = _parse_cursor(page, order)
    key_column: ColumnElement[Any]
    id_column: ColumnElement[Any]
    if page.sort is BookSort.RELEVANCE:
        if ranked_by is None:
            raise ValueError("sort=relevance needs the search's (rank, id) columns")
        key_column, id_column = ranked_by
    else:
        key_column = books.c[order.column_name]
        id_column = books.c.id
    statement = statement.add_columns(key_column.label("sort_key"))
    if after is not None:
        boundary = tuple_(
            bindparam(None, after[0], type_=key_column.type),
            bindparam(None, after[1], type_=id_column.type),
        )
        row_key = tuple_(key_column, id_column)
        statement = statement.where(row_key < boundary if order.descending else row_key > boundary)
    if order.descending:
        statement = statement.order_by(key_column.desc(), id_column.desc())
    else:
        statement = statement.order_by(key_column.asc(), id_column.asc())
    return statement.limit(page.limit + 1)


def _json_value(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def next_key(page: PageRequest, rows: Sequence[Row[Any]]) -> str:
    """The cursor of the page after ``rows`` (the last row served is ``rows[page.limit - 1]``)."""
    last = rows[page.limit - 1]
    return encode_cursor(page.sort.value, [_json_value(last.sort_key), str(last.id)])
