"""Sort orders of the book list and keyset pagination over them.

Every order ends with the book id, so the order is total and a page boundary is exact: the next
page is ``(sort_key, id) > (last sort_key, last id)`` (``<`` when descending), a row comparison
that an index on ``(sort_key, id)`` serves at any depth, unlike OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select

from bookshelf.books.models import books
from bookshelf.books.schemas import BookSort
from bookshelf.pagination import (
    CursorDate,
    CursorId,
    CursorNumber,
    CursorSchema,
    CursorText,
    CursorTimestamp,
)


@dataclass(frozen=True)
class _Order:
    column_name: str
    descending: bool
    # The type of the cursor key: (last sort key, last id), validated on decode.
    cursor: CursorSchema[tuple[Any, CursorId]]


_ORDERS = {
    sort: _Order(column_name, descending, CursorSchema(sort.value, key_type, CursorId))
    for sort, column_name, descending, key_type in (
        (BookSort.TITLE, "sort_title", False, CursorText),
        (BookSort.TITLE_DESC, "sort_title", True, CursorText),
        (BookSort.PUBLISHED_DATE, "published_sort", False, CursorDate),
        (BookSort.PUBLISHED_DATE_DESC, "published_sort", True, CursorDate),
        (BookSort.CREATED_AT, "created_at", False, CursorTimestamp),
        (BookSort.CREATED_AT_DESC, "created_at", True, CursorTimestamp),
        (BookSort.RELEVANCE, "rank", True, CursorNumber),
    )
}


@dataclass(frozen=True)
class PageRequest:
    sort: BookSort
    cursor: str | None
    limit: int


def apply_order(
    statement: Select[Any],
    sort: BookSort,
    *,
    resumed: bool,
    ranked_by: tuple[ColumnElement[Any], ColumnElement[Any]] | None = None,
) -> Select[Any]:
    """Order ``statement`` by ``sort``, skip to a cursor (``resumed``), and fetch one row extra;
    the values are bound parameters (``page_values``).

    The extra row tells whether a next page exists without a COUNT. The sort key is selected as
    ``sort_key`` so the next cursor can be made from the last row. ``sort=relevance`` orders by
    ``ranked_by``, the ``(rank, id)`` columns of the search's candidates subquery: ordering and
    skipping on the subquery's own columns lets the database sort the candidates and join only
    the page's rows to ``books``.
    """
    order = _ORDERS[sort]
    key_column: ColumnElement[Any]
    id_column: ColumnElement[Any]
    if sort is BookSort.RELEVANCE:
        if ranked_by is None:
            raise ValueError("sort=relevance needs the search's (rank, id) columns")
        key_column, id_column = ranked_by
    else:
        key_column = books.c[order.column_name]
        id_column = books.c.id
    return order.cursor.page_template(
        statement.add_columns(key_column.label("sort_key")),
        (key_column, id_column),
        descending=order.descending,
        resumed=resumed,
    )


def page_values(page: PageRequest) -> dict[str, Any]:
    """The values of ``apply_order``'s parameters for ``page``; ``InvalidCursor`` if bad."""
    return _ORDERS[page.sort].cursor.page_values(page.cursor, page.limit)


def next_key(page: PageRequest, rows: Sequence[Row[Any]]) -> str | None:
    """The cursor of the page after ``rows`` (fetched by ``apply_order``), or None."""
    return _ORDERS[page.sort].cursor.next_cursor(rows, page.limit, lambda r: (r.sort_key, r.id))
