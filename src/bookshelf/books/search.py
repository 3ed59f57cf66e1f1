"""Full-text search over title, subtitle and authors, one implementation per database.

PostgreSQL: a generated ``tsvector`` column (``simple`` configuration: lower-cased, no stemming,
so it works for every language in the catalog) with a GIN index, queried with
``plainto_tsquery`` (every word must match; no operator syntax, so it never fails on user input
and means the same as on SQLite) and ranked with ``ts_rank``.
SQLite: an FTS5 table kept in step with ``books`` by triggers, ranked with ``bm25``.

Ranking is bounded. Neither index returns matches in relevance order, so ranking every match of
a common word costs a heap visit and a rank per match: it grew with the catalog (bench/ scale).
``sort=relevance`` therefore ranks a capped candidate set: at most
``BOOKSHELF_SEARCH_RANK_CANDIDATES`` matching rows, the first the index yields (or, for a word
in a large share of the books, the first in table order: PostgreSQL's planner then reads the
table until it has them, which is cheaper than the word's whole posting list), and pages
through those by ``(rank, id)``. Relevance is exact within the candidate set; a match
beyond the cap is not served in relevance order (the client narrows the search, or asks for
another sort). The candidates are the same statement on every page, so paging visits each of
them at most once and ends when they are exhausted (a write between two page requests may
change which rows are candidates; a row's ``(rank, id)`` does not move, so none is served
twice). Other sorts filter by the match and are
served by their own keyset index; the search statement timeout bounds them.

What the cap does not bound: on PostgreSQL the GIN index answers with a bitmap of every match,
so it reads each word's whole posting list before the cap applies. A word in a few percent of
the books (or two such words together) therefore still costs more as the catalog grows
(measured at 1M books for a word in 3 % of them and two that meet in 0.07 %: bench/RESULTS.md,
"Scale: what bounds a search"). A smaller cap helps the single word, not the pair. The two
alternatives measured there did not pay: the RUM extension ranks every match inside its index
(slower than this), and an index of word pairs is ten times the size of the word index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Double,
    Integer,
    Select,
    String,
    Subquery,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
)

from bookshelf.books.models import books
from bookshelf.db.database import Connection

_FTS_TABLE = table("books_fts", column("rowid"))
_FTS: ColumnClause[Any] = literal_column("books_fts")
_SEARCH_VECTOR: ColumnClause[Any] = literal_column("books.search_vector")


def fts5_query(text: str) -> str:
    """Turn free text into an FTS5 query that matches every word, whatever punctuation it holds.

    Each word becomes a quoted string (FTS5 syntax has no meaning inside quotes), so input such as
    ``title:"x" OR NEAR(`` searches for those words instead of failing as a syntax error.
    """
    words = [word.replace('"', '""') for word in text.split()]
    return " ".join(f'"{word}"' for word in words if any(c.isalnum() for c in word))


# Statements take the search text and the candidate cap as bound parameters of these names,
# so one statement serves every search of its shape (``text_values`` has the values).
_TEXT, _CAP = "search_text", "search_cap"


def text_values(text: str, *, dialect: str, cap: int = 0) -> dict[str, Any]:
    """The values of the search's parameters: ``text`` as each database's query takes it."""
    return {_TEXT: text if dialect == "postgresql" else fts5_query(text), _CAP: cap}


def _tsquery() -> ColumnElement[Any]:
    return func.plainto_tsquery(
        literal_column("'simple'::regconfig"), bindparam(_TEXT, type_=String)
    )


def add_text_search(statement: Select[Any], *, dialect: str) -> Select[Any]:
    """Keep only the books matching every word of the search text (no ranking)."""
    if dialect == "postgresql":
        return statement.where(_SEARCH_VECTOR.op("@@")(_tsquery()))
    return statement.join_from(
        books, _FTS_TABLE, _FTS_TABLE.c.rowid == literal_column("books.rowid")
    ).where(_FTS.op("MATCH")(bindparam(_TEXT, type_=String)))


def ranked_candidates(conditions: Sequence[ColumnElement[bool]], *, dialect: str) -> Subquery:
    """``(id, rank)`` of at most the cap of books matching the text and ``conditions``; a
    higher rank is more relevant. Filters apply before the cap, so they never empty a page that
    has matches; the rank is computed for the candidates only."""
    if dialect == "postgresql":
        query = _tsquery()
        rank: ColumnElement[Any] = func.ts_rank(_SEARCH_VECTOR, query)
        statement = select(books.c.id, cast(rank, Double).label("rank")).where(
            _SEARCH_VECTOR.op("@@")(query), *conditions
        )
    else:
        statement = select(books.c.id, cast(-func.bm25(_FTS), Double).label("rank"))
        statement = add_text_search(statement, dialect=dialect).where(*conditions)
    return statement.limit(bindparam(_CAP, type_=Integer)).subquery("candidates")


# Settings of a search statement on PostgreSQL, each with is_local=true: it ends with the
# transaction, so neither a pooled connection nor a server connection that PgBouncer shares
# between clients keeps it. They are sent with the transaction's BEGIN (one round trip).
# - statement_timeout: the search's own, tighter limit (0: the connection's).
# - synchronize_seqscans off: for a word in a large share of the books the planner rightly
#   reads the table until it has the candidates (cheaper than the whole posting list), but a
#   synchronized scan starts wherever a concurrent scan is, so the candidates would change from
#   one page request to the next. Unsynchronized, they are the first matches in table order.
# - no parallel workers: their rows arrive in any order, with the same effect.
# - custom plans only: the right plan depends on how common the words are (posting list or
#   table scan), but a prepared statement (asyncpg prepares each) switches to one generic plan
#   after five executions when that looks cheaper on average. Measured at 1M books: a generic
#   bitmap plan, chosen after searches for rarer words, read the whole posting list of "the"
#   on every later search, many times the custom plan's time (bench/RESULTS.md).
def _search_settings(timeout_ms: int) -> dict[str, str]:
    settings = {
        "synchronize_seqscans": "off",
        "max_parallel_workers_per_gather": "0",
        "plan_cache_mode": "force_custom_plan",
    }
    if timeout_ms:
        settings["statement_timeout"] = f"{timeout_ms}ms"
    return settings


@asynccontextmanager
async def bounded(connection: Connection, timeout_ms: int) -> AsyncIterator[None]:
    """Run the block's search statement under the settings above (PostgreSQL).

    Transaction-local settings need a transaction, and a read runs in autocommit
    (``db.connections``): the block gets one of its own (BEGIN with the settings in one round
    trip, the search, COMMIT); on a connection that writes, the settings join its transaction.
    A search over the timeout is cancelled by the server and raises ``StatementCancelled``.
    SQLite has no statement timeout (its searches are bounded by the candidate cap) and
    scans deterministically: the block runs as it is.
    """
    if connection.dialect != "postgresql":
        yield
        return
    async with connection.transaction(_search_settings(timeout_ms)):
        yield
