"""HTTP endpoints of bulk export and import (NDJSON); the work is in ``books.bulk``.

Added to the books router by ``books.routes`` (the same router, not an included one, so the
route's template, in metrics and Idempotency-Key scopes, is the full path), whose
``/books/{book_id}`` routes never take ``export`` or ``import`` for an id.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from bookshelf.api import json_response
from bookshelf.auth.dependencies import EditorUser
from bookshelf.books import bulk
from bookshelf.books.exceptions import TooManyImportLines
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
    database: DatabaseDep,
    settings: SettingsDep,
    filters: Annotated[BookFilters, Query()],
) -> Response:
    """Stream every book matching the list's filters as NDJSON (one `Book` per line, in id
    order), read in batches: constant memory, and no database connection held while the
    client reads."""
    batches = bulk.export_batches(
        database, filters, search_timeout_ms=settings.search_statement_timeout_ms
    )
    # The first batch is read before the answer starts, so its failure (a search past its
    # timeout, a database that is down) is still a problem response, not a cut-off stream.
    first: list[Book] = await anext(batches, [])
    return StreamingResponse(_ndjson(first, batches), media_type=bulk.NDJSON_MEDIA_TYPE)


async def _ndjson(first: list[Book], rest: AsyncIterator[list[Book]]) -> AsyncIterator[bytes]:
    if first:
        yield bulk.ndjson_lines(first)
    async for batch in rest:
        yield bulk.ndjson_lines(batch)


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
    `Idempotency-Key` to make retries safe."""
    body = await request.body()
    lines = bulk.numbered_lines(body)
    if len(lines) > settings.import_max_lines:
        raise TooManyImportLines(settings.import_max_lines)
    fingerprint = _ImportFingerprint(mode=mode, body_sha256=hashlib.sha256(body).hexdigest())
    if (replay := await idempotency.claim(fingerprint)) is not None:
        return replay
    outcomes = await bulk.import_books(
        connection,
        lines,
        actor=editor.id,
        all_or_nothing=mode is ImportMode.ALL_OR_NOTHING,
    )
    path = request.url.path
    results = [
        ImportLineResult(line=outcome.line, status="created", id=outcome.book_id)
        if outcome.error is None
        else ImportLineResult(
            line=outcome.line, status="error", problem=_problem(outcome.error, path)
        )
        for outcome in outcomes
    ]
    created = sum(1 for result in results if result.status == "created")
    report = ImportReport(created=created, failed=len(results) - created, results=results)
    return await idempotency.record(json_response(report))


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
            **problem_responses(422),
        },
    )
    router.add_api_route(
        "/import",
        import_books,
        methods=["POST"],
        response_model=ImportReport,
        responses=problem_responses(400, 401, 403, 409, 413, 415),
        dependencies=[Depends(require_ndjson_body)],
        openapi_extra={"requestBody": _IMPORT_BODY},
    )
