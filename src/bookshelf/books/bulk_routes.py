"""HTTP endpoints of bulk export and import (NDJSON); the work is in ``books.bulk``.

Added to the books router by ``books.routes`` (the same router, not an included one, so the
route's template, in metrics and Idempotency-Key scopes, is the full path), whose
``/books/{book_id}`` routes never take ``export`` or ``import`` for an id.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from bookshelf.api import json_response
from bookshelf.auth.dependencies import EditorUser
from bookshelf.books import bulk
from bookshelf.books.dependencies import import_slot, take_export_turn
from bookshelf.books.schemas import (
    Book,
    BookFilters,
    ImportLineResult,
    ImportMode,
    ImportReport,
)
from bookshelf.db.connections import ConnectionDep, DatabaseDep
from bookshelf.dependencies import SettingsDep
from bookshelf.exceptions import DomainError, UnsupportedMediaType
from bookshelf.idempotency.dependencies import Idempotent
from bookshelf.problems import Problem, problem_responses, problem_type_uri


class NdjsonResponse(JSONResponse):
    """Declares the export's media type in OpenAPI; the route returns a StreamingResponse.
    (A JSONResponse subclass, so FastAPI takes the declared schema as it is.)"""

    media_type = bulk.NDJSON_MEDIA_TYPE


# NDJSON is a body of lines, not one JSON document: declared as bytes (what generated clients
# and tools can handle), its lines described in words.
_EXPORT_SCHEMA = {
    "type": "string",
    "format": "binary",
    "description": "Lines of `Book` objects (see the `Book` schema), by id.",
}


async def export_books(
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    filters: Annotated[BookFilters, Query()],
) -> Response:
    """Stream every book matching the list's filters as NDJSON (one `Book` per line, in id
    order), read in batches: constant memory, and no database connection held while the
    client reads. At most `BOOKSHELF_EXPORT_PER_ADDRESS` exports stream at once from one
    address (429) and `BOOKSHELF_EXPORT_CONCURRENCY` per worker (503)."""
    give_back = await take_export_turn(request)
    try:
        batches = bulk.export_batches(
            database,
            filters,
            search_timeout_ms=settings.search_statement_timeout_ms,
            search_slots=request.app.state.search_slots,
        )
        # The first batch is read before the answer starts, so its failure (a search past its
        # timeout, a database that is down) is still a problem response, not a cut-off stream.
        first: list[Book] = await anext(batches, [])
    except BaseException:
        give_back()
        raise
    return _ExportStream(_ndjson(first, batches, give_back), give_back)


class _ExportStream(StreamingResponse):
    """The export's answer, which gives the export's turn back however the stream ends: sent
    whole, failed, cut by its time limit, or left by its client (a HEAD stops it too). Called
    by FastAPI as soon as the handler returns it. (A stream read to its end has given the turn
    back already, in ``_ndjson``.)"""

    def __init__(self, content: AsyncIterator[bytes], give_back: Callable[[], None]) -> None:
        super().__init__(content, media_type=bulk.NDJSON_MEDIA_TYPE)
        self._give_back = give_back

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._give_back()


async def _ndjson(
    first: list[Book], rest: AsyncIterator[list[Book]], give_back: Callable[[], None]
) -> AsyncIterator[bytes]:
    try:
        if first:
            yield bulk.ndjson_lines(first)
        async for batch in rest:
            yield bulk.ndjson_lines(batch)
    finally:
        # Before the end of the body is sent: a client that starts its next export as soon as
        # it has read this one to the end must find the turn free.
        give_back()


_NDJSON_MEDIA_TYPES = frozenset({bulk.NDJSON_MEDIA_TYPE, "application/jsonl"})


async def require_ndjson_body(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() not in _NDJSON_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Send the books as {bulk.NDJSON_MEDIA_TYPE}, one JSON object per line"
            + (f", not {content_type}." if content_type else "; the Content-Type is missing.")
        )


class _ImportFingerprint(BaseModel):
    """What an Idempotency-Key of an import is bound to: the mode and the exact body."""

    mode: ImportMode
    body_sha256: str


_IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "description": "One `BookCreate` JSON object per line (NDJSON); blank lines are skipped.",
    "content": {
        bulk.NDJSON_MEDIA_TYPE: {
            "schema": {
                "type": "string",
                "format": "binary",
                "description": "Lines of `BookCreate` objects.",
                "examples": [
                    '{"title": "The Hobbit", "authors": ["J. R. R. Tolkien"]}\n'
                    '{"title": "Dune", "authors": ["Frank Herbert"], "isbn": "9780441172719"}\n'
                ],
            }
        }
    },
}


def _problem(error: DomainError, instance: str) -> Problem:
    errors = getattr(error, "errors", None)
    return Problem.model_validate(
        {
            "type": problem_type_uri(error.slug),
            "title": error.title,
            "status": error.status,
            "detail": error.detail,
            "instance": instance,
            "errors": errors,
        }
    )


async def import_books(
    request: Request,
    editor: EditorUser,
    connection: ConnectionDep,
    idempotency: Idempotent,
    settings: SettingsDep,
    mode: Annotated[
        ImportMode,
        Query(
            description="`partial` (default): write the valid lines, report the others. "
            "`all-or-nothing`: any bad line is a 422 listing them, and nothing is written."
        ),
    ] = ImportMode.PARTIAL,
) -> Response:
    """Add many books at once (editors): NDJSON, one `BookCreate` per line, at most
    `BOOKSHELF_IMPORT_MAX_LINES` lines. Answers one result per line. Send an
    `Idempotency-Key` to make retries safe. At most `BOOKSHELF_IMPORT_CONCURRENCY` imports
    run at once per worker (503 past a short wait)."""
    # Each part of the body is split into lines and validated as it arrives (a 413 as soon as
    # one line too many starts): neither the body nor its lines' text is ever held whole.
    reader = bulk.LineReader(max_lines=settings.import_max_lines)
    parsed = bulk.ParsedLines()
    body_sha256 = hashlib.sha256()
    async for chunk in request.stream():
        body_sha256.update(chunk)
        await bulk.parse_lines(reader.feed(chunk), into=parsed)
    await bulk.parse_lines(reader.end(), into=parsed)
    fingerprint = _ImportFingerprint(mode=mode, body_sha256=body_sha256.hexdigest())
    if (replay := await idempotency.claim(fingerprint)) is not None:
        return replay
    outcomes = await bulk.import_parsed(
        connection,
        parsed,
        actor=editor.id,
        all_or_nothing=mode is ImportMode.ALL_OR_NOTHING,
    )
    del parsed  # the validated books, written now: not held while the answer is built
    report = _report(outcomes, request.url.path)
    return await idempotency.record(json_response(report))


def _report(outcomes: list[bulk.LineOutcome], instance: str) -> ImportReport:
    """The answer, one result per outcome. The outcomes are let go as their results are built
    (the list is emptied), so a line's errors are not held twice at once."""
    results: list[ImportLineResult] = []
    outcomes.reverse()
    while outcomes:
        outcome = outcomes.pop()
        results.append(
            ImportLineResult(line=outcome.line, status="created", id=outcome.book_id)
            if outcome.error is None
            else ImportLineResult(
                line=outcome.line, status="error", problem=_problem(outcome.error, instance)
            )
        )
    created = sum(1 for result in results if result.status == "created")
    return ImportReport(created=created, failed=len(results) - created, results=results)


def add_bulk_routes(router: APIRouter) -> None:
    """Add ``/export`` and ``/import`` to the books router."""
    router.add_api_route(
        "/export",
        export_books,
        methods=["GET"],
        response_class=NdjsonResponse,
        responses={
            200: {
                "description": "Every matching book, one `Book` JSON object per line, by id.",
                "content": {bulk.NDJSON_MEDIA_TYPE: {"schema": _EXPORT_SCHEMA}},
            },
            **problem_responses(
                422,
                descriptions={
                    429: "Too many exports from this address at once, or the rate limit; "
                    "see Retry-After.",
                    503: "Too many exports in progress, a search (`q`) that timed out or "
                    "found no free slot, or temporarily unavailable; see Retry-After.",
                },
            ),
        },
    )
    router.add_api_route(
        "/import",
        import_books,
        methods=["POST"],
        response_model=ImportReport,
        responses=problem_responses(
            400,
            401,
            403,
            409,
            413,
            415,
            descriptions={
                413: "Request body too large, or more lines than an import may hold.",
                503: "Too many imports in progress, or temporarily unavailable; see Retry-After.",
            },
        ),
        # The import's turn is taken before its connection (the sign-in check's) and its body.
        dependencies=[Depends(require_ndjson_body), Depends(import_slot, scope="function")],
        openapi_extra={"requestBody": _IMPORT_BODY},
    )
