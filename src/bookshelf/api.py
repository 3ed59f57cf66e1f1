"""What every feature's routes share about the API: its prefix and media type, JSON bodies in
and out, the ``Link`` header of a paginated list, and ids in paths. Conditional requests
(ETags) are in ``bookshelf.conditional``."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from bookshelf.exceptions import UnsupportedMediaType

API_VERSION = "v1"
# Every feature's routes live under this prefix.
API_PREFIX = f"/api/{API_VERSION}"
JSON_MEDIA_TYPE = "application/json"


def operation_id(route: APIRoute) -> str:
    """The route function's name (``list_books``, ``create_book``): stable and readable method
    names in every generated client, instead of FastAPI's path-and-method compound."""
    return route.name


def feature_router(
    path: str, *, tags: list[str | Enum], route_class: type[APIRoute] = APIRoute
) -> APIRouter:
    """A feature's router, its routes already under ``API_PREFIX``, so that the fast path can
    put them on the app's own route list as they are (``main.add_routes``)."""
    return APIRouter(
        prefix=API_PREFIX + path,
        tags=tags,
        route_class=route_class,
        generate_unique_id_function=operation_id,
    )


def next_page_headers(request: Request, next_cursor: str | None) -> dict[str, str]:
    """The ``Link: rel="next"`` header of a keyset-paginated list (none on the last page).

    The target is a path-only reference (RFC 8288 allows relative ones, resolved against the
    request URL): an absolute URL would be built from the client's ``Host`` header, so a forged
    Host would land in the response (and in any cache keyed without it).
    """
    if next_cursor is None:
        return {}
    # The request's own query with its cursor replaced, as Starlette's
    # ``URL.include_query_params`` would give it, without building the whole URL first (from
    # the Host header, only to drop it again; measured: bench/RESULTS.md).
    query = [(key, value) for key, value in request.query_params.multi_items() if key != "cursor"]
    query.append(("cursor", next_cursor))
    path = request.scope["path"]
    for character, escaped in _PATH_ESCAPES:
        path = path.replace(character, escaped)
    return {"Link": f'<{path}?{urlencode(query)}>; rel="next"'}


# What Starlette escapes in a path taken from the ASGI scope (where it is decoded): a "?" or "#"
# there would otherwise start the reference's query or fragment.
_PATH_ESCAPES = (("?", "%3F"), ("#", "%23"), ("\\", "%5C"))


def uuid_or_not_found(raw: str, not_found: Callable[[str], Exception]) -> UUID:
    """Ids are UUIDs; anything else names nothing, so it is a 404 rather than a 422."""
    try:
        return UUID(raw)
    except ValueError:
        raise not_found(raw) from None


def json_response(
    model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise a model once, in pydantic's core, skipping FastAPI's response re-validation."""
    return Response(
        content=model.__pydantic_serializer__.to_json(model),
        status_code=status_code,
        headers=headers,
        media_type=JSON_MEDIA_TYPE,
    )


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """Refuse a request body that is not JSON with 415 instead of a confusing 422."""
    content_type = request.headers.get("content-type")
    has_body = request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )
    if content_type is None and not has_body:
        return
    if content_type is None or not _is_json(content_type):
        raise UnsupportedMediaType(
            f"Send the body as {JSON_MEDIA_TYPE}"
            + (
                f", not {content_type}."
                if content_type
                else "; the Content-Type header is missing."
            )
        )
