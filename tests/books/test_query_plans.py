"""PostgreSQL only: every query shape of ``GET /books`` is served by an index, never a seq scan.

The test database holds tens of thousands of realistic books (``bookshelf.books.seed``, loaded
with COPY), vacuumed and analysed, so the planner would pick a sequential scan wherever no index
fitted. For each shape (every sort, without a filter and with each filter, searches with every
sort, combined filters; first page and a cursor page), the real statement is captured from the
app as it serves the request and explained, with the same parameters, on the same pooled
connection, twice:

* as a custom plan, the one PostgreSQL makes for the parameter values (what ``EXPLAIN`` shows
  and what a prepared statement gets on its first executions), and
* as the generic plan that a prepared statement switches to once it has been reused a few times
  (asyncpg prepares and caches every statement), made without looking at the values.

Neither plan may hold a ``Seq Scan`` on ``books``, ``book_authors`` or ``book_subjects``, and each
must use an index. Seq scans are never disabled (``enable_seqscan=off`` would let nothing fail).
One exception, bounded by the search's candidate cap rather than by an index: a relevance search
for a word in a large share of the books may read the table until it has its candidates
(``bounded_candidate_scans``).

The app and the test share pytest-asyncio's module-scoped event loop, so the books are loaded
once per pytest-xdist worker, into a database of the worker's own that is dropped at the end.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from bookshelf.books.schemas import BookSort
from bookshelf.books.seed import seed_books
from bookshelf.db.database import Connection, Database, unit_of_work
from bookshelf.db.postgres import PostgresConnection
from bookshelf.main import create_app
from tests.conftest import (
    make_settings,
    migrate_database,
    new_postgres_database,
    remove_postgres_database,
)

pytestmark = pytest.mark.postgres_only

BOOKS = "/api/v1/books"
# Enough for a seq scan to win wherever no index fits; and ANALYZE samples 300 x 100 (the default
# statistics target) = 30,000 rows, so it reads every book and the plans are the same every run.
SEEDED_BOOKS = 30_000
MAX_LIMIT = 100
# A relevance search may scan the table for its capped candidates when its words are in at
# least this share of the books (see bounded_candidate_scans).
COMMON_WORD_SHARE = 0.1
WATCHED_TABLES = frozenset({"books", "book_authors", "book_subjects"})
INDEX_NODES = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})

# Filter values that depend on the loaded books; replaced by real ones from the database.
TOP_AUTHOR = "<the author with the most books>"
TOP_SUBJECT = "<the subject with the most books>"
SOME_ISBN = "<an ISBN in the catalog>"

FILTERS: dict[str, dict[str, str]] = {
    "author": {"author": TOP_AUTHOR},
    "subject": {"subject": TOP_SUBJECT},
    # More than half the books are in English; few are in Japanese.
    "language_en": {"language": "en"},
    "language_ja": {"language": "ja"},
    "isbn": {"isbn": SOME_ISBN},
    "published_from": {"published_from": "2000"},
    "published_to": {"published_to": "1900"},
    "published_range": {"published_from": "1990", "published_to": "1999-06"},
    # A word of 3% of the titles, one of 40% of them (ranking them all is the worst search),
    # and two words that are rarely together.
    "q_lighthouse": {"q": "lighthouse"},
    "q_the": {"q": "the"},
    "q_two_words": {"q": "winter garden"},
}
SEARCHES = ("q_lighthouse", "q_the", "q_two_words")
SINGLE_FILTERS = tuple(name for name in FILTERS if name not in SEARCHES)
KEYSET_SORTS = tuple(sort for sort in BookSort if sort is not BookSort.RELEVANCE)
ALL_SORTS = tuple(BookSort)

# Shapes known to scan a table sequentially, by test id (none: keep it that way).
KNOWN_SEQ_SCANS: dict[str, str] = {}


def shape(
    sort: BookSort | None, *filters: str, page: str, limit: int | None = None
) -> Any:  # pytest.param's own type is private
    params: dict[str, str] = {}
    for name in filters:
        params.update(FILTERS[name])
    if sort is not None:
        params["sort"] = sort.value
    if limit is not None:
        params["limit"] = str(limit)
    parts = [
        sort.name.lower() if sort is not None else "default_sort",
        "+".join(filters) or "no_filter",
        *([f"limit_{limit}"] if limit is not None else []),
        f"{page}_page",
    ]
    test_id = "-".join(parts)
    marks = []
    if test_id in KNOWN_SEQ_SCANS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_SEQ_SCANS[test_id]))
    return pytest.param(params, page, id=test_id, marks=marks)


def all_shapes() -> list[Any]:
    shapes = []
    for page in ("first", "cursor"):
        # The default order (newest first, or relevance when searching) as the API sends it.
        shapes.append(shape(None, page=page))
        shapes.extend(shape(None, search, page=page) for search in SEARCHES)
        for sort in KEYSET_SORTS:
            shapes.append(shape(sort, page=page))
            shapes.extend(shape(sort, name, page=page) for name in SINGLE_FILTERS)
            shapes.append(shape(sort, "author", "language_en", page=page))
            shapes.append(shape(sort, "subject", "published_range", page=page))
        for sort in ALL_SORTS:
            shapes.extend(shape(sort, search, page=page) for search in SEARCHES)
        for sort in (BookSort.RELEVANCE, BookSort.TITLE, BookSort.CREATED_AT_DESC):
            shapes.append(shape(sort, "q_lighthouse", "language_en", page=page))
            shapes.append(shape(sort, "q_the", "subject", "published_range", page=page))
            shapes.append(shape(sort, "q_the", "author", page=page))
        everything = ("q_the", "author", "subject", "language_en", "published_range")
        shapes.append(shape(BookSort.RELEVANCE, *everything, page=page))
        shapes.append(shape(BookSort.PUBLISHED_DATE_DESC, *everything, page=page))
        # The largest page: walking a sort index for 101 rows costs more than for 21.
        for name in ("subject", "language_ja", "published_range"):
            shapes.append(shape(BookSort.CREATED_AT_DESC, name, page=page, limit=MAX_LIMIT))
            shapes.append(shape(BookSort.TITLE, name, page=page, limit=MAX_LIMIT))
        shapes.append(shape(BookSort.RELEVANCE, "q_the", page=page, limit=MAX_LIMIT))
    return shapes


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a JSON plan (subplans and init plans are children too)."""
    yield node
    for child in node.get("Plans", ()):
        yield from plan_nodes(child)


def bounded_candidate_scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Seq scans on books that read only until they have a relevance search's candidates.

    For a word in a large share of the books, ``LIMIT <cap>`` over a scan of the table in table
    order is cheaper than reading the word's whole posting list from the GIN index, and its cost
    is bounded by the cap, not the table: about cap / share rows. The planner picks it only when
    it expects that many matches; accepted here only under the candidates' Limit, for a share
    of at least COMMON_WORD_SHARE (so at most ~1 / share rows read per candidate). A planner
    that overestimates the share is cut off by the search statement timeout.
    """
    for child in node.get("Plans", ()):
        if (
            node["Node Type"] == "Limit"
            and child["Node Type"] == "Seq Scan"
            and child.get("Relation Name") == "books"
            and child["Plan Rows"] >= COMMON_WORD_SHARE * SEEDED_BOOKS
        ):
            yield child
        yield from bounded_candidate_scans(child)


def plan_problems(plan: dict[str, Any]) -> list[str]:
    nodes = list(plan_nodes(plan))
    bounded = [id(node) for node in bounded_candidate_scans(plan)]
    problems = [
        f"Seq Scan on {node['Relation Name']}"
        for node in nodes
        if node["Node Type"] == "Seq Scan"
        and node.get("Relation Name") in WATCHED_TABLES
        and id(node) not in bounded
    ]
    if not any(node["Node Type"] in INDEX_NODES for node in nodes):
        problems.append("no index is used")
    return problems


def _plan_value(value: Any) -> Any:
    # The app's connections decode json results themselves; a bare asyncpg one would not.
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class Catalog:
    """The app over the loaded books, started in the module's event loop."""

    database: Database
    client: httpx.AsyncClient
    values: dict[str, str]
    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def resolve(self, params: dict[str, str]) -> dict[str, str]:
        return {key: self.values.get(value, value) for key, value in params.items()}

    async def get(self, params: dict[str, str]) -> dict[str, Any]:
        response = await self.client.get(BOOKS, params=params)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    async def cursor_for(self, params: dict[str, str]) -> str:
        """The ``next_cursor`` of the first page; if that is the only page, of a first page of
        one book, or (for one ISBN) of the unfiltered list in the same order."""
        unfiltered = {key: value for key, value in params.items() if key in ("sort", "q")}
        for attempt in (params, {**params, "limit": "1"}, unfiltered):
            cursor = (await self.get(attempt))["next_cursor"]
            if cursor is not None:
                assert isinstance(cursor, str)
                return cursor
        raise AssertionError(f"no second page for {params}")

    async def list_statement(self, params: dict[str, str]) -> tuple[str, tuple[Any, ...]]:
        """Serve the list and return the statement it ran on ``books``, with its parameters."""
        self.statements.clear()
        await self.get(params)
        on_books = [(sql, args) for sql, args in self.statements if "FROM books" in sql]
        assert len(on_books) == 1, f"expected one statement on books, got {self.statements}"
        return on_books[0]

    async def explain(
        self, sql: str, args: tuple[Any, ...], *, generic: bool, fmt: str = "JSON"
    ) -> Any:
        # The pool holds one connection: the one that just served the request.
        async with unit_of_work(self.database, write=False) as connection:
            assert isinstance(connection, PostgresConnection)
            raw = connection.raw
            if generic:
                rows = await self._explain_generic(raw, sql, len(args), fmt)
            else:
                rows = await raw.fetch(f"EXPLAIN (FORMAT {fmt}) {sql}", *args)
        if fmt == "JSON":
            return _plan_value(rows[0][0])
        return "\n".join(row[0] for row in rows)

    @staticmethod
    async def _explain_generic(raw: Any, sql: str, arity: int, fmt: str) -> Any:
        # Every parameter carries a cast, so the prepared statement's types are the app's.
        await raw.execute(f"PREPARE plan_check AS {sql}")
        try:
            async with raw.transaction():
                await raw.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                # A generic plan ignores the values: NULLs of the declared types will do.
                values = ", ".join(["NULL"] * arity)
                return await raw.fetch(f"EXPLAIN (FORMAT {fmt}) EXECUTE plan_check({values})")
        finally:
            await raw.execute("DEALLOCATE plan_check")


async def _settle_and_pick_values(connection: Connection) -> dict[str, str]:
    """Vacuum and analyse the loaded books; return the data-dependent filter values."""
    # A bulk load leaves the full-text GIN index's pending list (fastupdate) full until a vacuum
    # merges it, and until then a search rightly prefers a seq scan; autovacuum keeps a live
    # database merged, so plans are checked in that steady state.
    assert isinstance(connection, PostgresConnection)
    await connection.raw.execute("VACUUM (ANALYZE) books, book_authors, book_subjects")

    async def most_common(table: str) -> str:
        query = f"SELECT name_key FROM {table} GROUP BY 1 ORDER BY count(*) DESC, 1"  # noqa: S608
        value = await connection.scalar(text(query))
        assert isinstance(value, str)
        return value

    isbn = await connection.scalar(text("SELECT min(isbn) FROM books"))
    assert isinstance(isbn, str)
    return {
        TOP_AUTHOR: await most_common("book_authors"),
        TOP_SUBJECT: await most_common("book_subjects"),
        SOME_ISBN: isbn,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalog() -> AsyncIterator[Catalog]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"bookshelf_plans_{worker}_{uuid.uuid4().hex[:8]}"
    url = await new_postgres_database(name)
    try:
        await migrate_database(url)
        # One pooled connection, so the plans are explained on the one that ran the query.
        settings = make_settings(url, database_pool_size=1, database_max_overflow=0)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            database: Database = app.state.database
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                await seed_books(database, SEEDED_BOOKS, seed=20261126)
                async with unit_of_work(database, write=False) as connection:
                    values = await _settle_and_pick_values(connection)
                catalog = Catalog(database, client, values)

                def record(sql: str, arguments: tuple[Any, ...]) -> None:
                    catalog.statements.append((sql, arguments))

                database.listeners.append(record)
                yield catalog
                database.listeners.remove(record)
    finally:
        await remove_postgres_database(name)


@pytest.mark.parametrize(("params", "page"), all_shapes())
@pytest.mark.asyncio(loop_scope="module")
async def test_list_query_is_served_by_an_index(
    catalog: Catalog, params: dict[str, str], page: str
) -> None:
    params = catalog.resolve(params)
    if page == "cursor":
        params = {**params, "cursor": await catalog.cursor_for(params)}
    sql, args = await catalog.list_statement(params)
    failures = []
    for generic in (False, True):
        plan = (await catalog.explain(sql, args, generic=generic))[0]["Plan"]
        problems = plan_problems(plan)
        if problems:
            readable = await catalog.explain(sql, args, generic=generic, fmt="TEXT")
            kind = "generic plan (a reused prepared statement)" if generic else "custom plan"
            failures.append(f"{kind}: {', '.join(problems)}\n{readable}")
    if failures:
        pytest.fail(f"GET {BOOKS} {params}\n{sql}\nparameters: {args}\n\n" + "\n\n".join(failures))
