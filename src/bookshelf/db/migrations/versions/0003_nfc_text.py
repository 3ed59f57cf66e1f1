"""Store book text in Unicode NFC, as the API now writes it, so old rows match new searches.

Until this revision the API stored text as sent, so a title typed with "u" + U+0308 (combining
diaeresis) did not match a search for "Zürich" typed with the precomposed "ü". Searches and
filters are now normalised to NFC (see bookshelf.text); this brings the books written before
into line: the text columns, the derived sort title and the author/subject keys (the
PostgreSQL search vector and the SQLite FTS index follow through their generated column and
triggers).

Only rows that are not already NFC are rewritten, and their version is bumped (their
representation changes, so their ETag must). PostgreSQL finds them with ``IS NOT NFC
NORMALIZED`` (a UTF-8 database only); SQLite, the small embedded default, is scanned in
batches. Users' display names and review bodies are not searched or compared, so they are left
as they are (new writes are NFC).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000
_JSON_LIST = sa.JSON().with_variant(JSONB(), "postgresql")
_TEXT_COLUMNS = ("title", "subtitle", "publisher", "description")
_LIST_COLUMNS = ("authors", "subjects")

_books = sa.table(
    "books",
    sa.column("id", sa.Uuid()),
    sa.column("version", sa.Integer()),
    *(sa.column(name, sa.Text()) for name in (*_TEXT_COLUMNS, "sort_title")),
    *(sa.column(name, _JSON_LIST) for name in _LIST_COLUMNS),
)
_key_tables = {
    name: sa.table(
        f"book_{name}",
        sa.column("book_id", sa.Uuid()),
        sa.column("position", sa.Integer()),
        sa.column("name_key", sa.Text()),
    )
    for name in _LIST_COLUMNS
}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fold(text: str) -> str:
    # The books service's key of a name or title at this revision (frozen here on purpose: a
    # migration must not change meaning when the application code does).
    return text.strip().casefold()


def _not_nfc_on_postgresql(connection: sa.Connection) -> sa.ColumnElement[bool] | None:
    """A filter for the rows to fix, where the database can evaluate it."""
    if connection.dialect.name != "postgresql":
        return None
    if connection.exec_driver_sql("SHOW server_encoding").scalar() != "UTF8":
        return None  # normalization needs UTF-8; scan everything instead
    columns = [*_TEXT_COLUMNS, *(f"{name}::text" for name in _LIST_COLUMNS)]
    return sa.or_(*(sa.text(f"{column} IS NOT NFC NORMALIZED") for column in columns))


def _fixed(row: Any) -> dict[str, Any]:
    """The changed columns of ``row`` (empty when it is all NFC already)."""
    changes: dict[str, Any] = {}
    for name in _TEXT_COLUMNS:
        value = getattr(row, name)
        if value is not None and _nfc(value) != value:
            changes[name] = _nfc(value)
    for name in _LIST_COLUMNS:
        values = getattr(row, name)
        if [_nfc(value) for value in values] != values:
            changes[name] = [_nfc(value) for value in values]
    if "title" in changes:
        changes["sort_title"] = _fold(changes["title"])
    if changes:
        # The representation changed (canonically equivalent, but not byte for byte), so its
        # strong ETag must change too.
        changes["version"] = _books.c.version + 1
    return changes


def upgrade() -> None:
    connection = op.get_bind()
    needs_fixing = _not_nfc_on_postgresql(connection)
    last_id = None
    while True:
        statement = sa.select(_books).order_by(_books.c.id).limit(_BATCH)
        if last_id is not None:
            statement = statement.where(_books.c.id > last_id)
        if needs_fixing is not None:
            statement = statement.where(needs_fixing)
        rows = connection.execute(statement).all()
        if not rows:
            return
        last_id = rows[-1].id
        for row in rows:
            changes = _fixed(row)
            if not changes:
                continue
            connection.execute(sa.update(_books).where(_books.c.id == row.id).values(**changes))
            for name, keys in _key_tables.items():
                if name not in changes:
                    continue
                connection.execute(sa.delete(keys).where(keys.c.book_id == row.id))
                if changes[name]:
                    connection.execute(
                        sa.insert(keys),
                        [
                            {"book_id": row.id, "position": position, "name_key": _fold(value)}
                            for position, value in enumerate(changes[name])
                        ],
                    )


def downgrade() -> None:
    """Nothing to undo: NFC text is canonically equivalent to what was stored (it reads the same)
    and is valid at revision 0002, whose API accepted any form. The original code point
    sequences are not kept, so they cannot be restored, and need not be."""
