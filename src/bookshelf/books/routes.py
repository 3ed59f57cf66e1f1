"""HTTP endpoints of the books feature: parse, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from bookshelf.api import (
    feature_router,
    json_response,
    next_page_headers,
    require_json_body,
)
from bookshelf.auth.dependencies import AdminUser, EditorUser
from bookshelf.books import bulk_routes, listing, service
from bookshelf.books.dependencies import (
    BookId,
    IfMatch,
    IfNoneMatch,
    book_id_from_path,
    search_slot,
)
from bookshelf.books.schemas import (
    Book,
    BookCreate,
    BookListQuery,
    BookPage,
    BookUpdate,
)
from bookshelf.conditional import etag, if_none_match_hits, versions_in_if_match
from bookshelf.db.connections import ConnectionDep
from bookshelf.dependencies import SettingsDep
from bookshelf.idempotency.dependencies import Idempotent
from bookshelf.problems import problem_responses

# Path segments the bulk routes own, which are never a book id.
_BULK_SEGMENTS = frozenset({"export", "import"})


class _BookRoute(APIRoute):
    """A route of the books router. ``/books/{book_id}`` does not match ``/books/export`` or
    ``/books/import``: ``PATCH /books/export`` is a 405 that names the methods the export has
    (``Allow: GET, HEAD``), not an attempt to patch a book called "export"."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            book_id = child_scope.get("path_params", {}).get("book_id")
            if book_id in _BULK_SEGMENTS:
                return Match.NONE, {}
        return match, child_scope


router = feature_router("/books", tags=["books"], route_class=_BookRoute)


def _book_headers(request: Request, book: Book) -> dict[str, str]:
    return {
        "ETag": etag(book.version),
        "Location": str(request.url_for("get_book", book_id=str(book.id)).path),
    }


@router.get(
    "",
    response_model=BookPage,
    responses=problem_responses(422),
    dependencies=[Depends(search_slot, scope="function")],
)
async def list_books(
    request: Request,
    connection: ConnectionDep,
    settings: SettingsDep,
    query: Annotated[BookListQuery, Query()],
) -> Response:
    """List books, filtered, searched and sorted, one page at a time (keyset pagination)."""
    bounds = listing.SearchBounds(
        rank_candidates=settings.search_rank_candidates,
        statement_timeout_ms=settings.search_statement_timeout_ms,
    )
    items, next_cursor = await listing.list_books(connection, query, search_bounds=bounds)
    page = BookPage(items=list(items), next_cursor=next_cursor)
    return json_response(page, headers=next_page_headers(request, next_cursor))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Book,
    responses=problem_responses(400, 401, 403, 409, 413, 415),
    dependencies=[Depends(require_json_body)],
)
async def create_book(
    request: Request,
    payload: BookCreate,
    editor: EditorUser,
    connection: ConnectionDep,
    idempotency: Idempotent,
) -> Response:
    """Add a book to the catalog (editors). Send an `Idempotency-Key` to make retries safe."""
    if (replay := await idempotency.claim(payload)) is not None:
        return replay
    book = await service.create_book(connection, payload, actor=editor.id)
    return await idempotency.record(
        json_response(book, status_code=201, headers=_book_headers(request, book))
    )


@router.get(
    "/{book_id}",
    response_model=Book,
    responses={
        304: {"description": "Not modified (If-None-Match)."},
        **problem_responses(404),
    },
)
async def get_book(
    book_id: str,
    connection: ConnectionDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Get one book. Send `If-None-Match` with its ETag to get 304 when unchanged."""
    book = await service.get_book(connection, book_id_from_path(book_id))
    tag = etag(book.version)
    if if_none_match_hits(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    return json_response(book, headers={"ETag": tag})


@router.patch(
    "/{book_id}",
    response_model=Book,
    responses=problem_responses(400, 401, 403, 404, 409, 412, 413, 415),
    dependencies=[Depends(require_json_body)],
    openapi_extra={
        "requestBody": {
            "content": {
                "application/merge-patch+json": {
                    "schema": {"$ref": "#/components/schemas/BookUpdate"}
                }
            }
        }
    },
)
async def update_book(
    book_id: BookId,
    patch: BookUpdate,
    editor: EditorUser,
    connection: ConnectionDep,
    if_match: IfMatch = None,
) -> Response:
    """Change a book with a JSON merge patch (editors); `null` clears an optional field."""
    book = await service.update_book(
        connection, book_id, patch, actor=editor.id, if_versions=versions_in_if_match(if_match)
    )
    return json_response(book, headers={"ETag": etag(book.version)})


@router.delete(
    "/{book_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 412),
)
async def delete_book(
    book_id: BookId,
    _admin: AdminUser,
    connection: ConnectionDep,
    if_match: IfMatch = None,
) -> Response:
    """Remove a book from the catalog (admins)."""
    await service.delete_book(connection, book_id, if_versions=versions_in_if_match(if_match))
    return Response(status_code=204)


# Last: routes are matched one after another, and a book's routes are the most requested.
# (/books/{book_id} never matches "export" or "import", so the order is free: _BookRoute.)
bulk_routes.add_bulk_routes(router)
