"""RFC 9457 problem details: every error response is rendered here, and nowhere else.

Domain exceptions (``bookshelf.exceptions``), request validation errors, Starlette's HTTP errors
(404 for unknown routes, 405 with ``Allow``) and unexpected exceptions all become
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and ``instance``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bookshelf.db.exceptions import DatabaseError, DatabaseUnavailable
from bookshelf.exceptions import DomainError
from bookshelf.ops.headers import API_CSP, COMMON_SECURITY_HEADERS
from bookshelf.ops.metrics import PROBLEMS
from bookshelf.ops.request_id import HEADER as REQUEST_ID_HEADER
from bookshelf.ops.request_id import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:bookshelf:problem:"

logger = logging.getLogger("bookshelf.errors")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the bad value is, e.g. ['body', 'title'].")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(examples=["urn:bookshelf:problem:book-not-found"])
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path of the request that failed.")
    request_id: str | None = Field(
        None, description="The request's id (also in X-Request-ID), to quote to operators."
    )
    errors: list[FieldError] | None = Field(
        None, description="For 422 validation problems: one entry per bad field."
    )


def problem_type_uri(slug: str) -> str:
    return _TYPE_PREFIX + slug


def problem_response(
    request: Request | None,
    *,
    status: int,
    title: str,
    detail: str,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    """A problem+json response; ``instance`` defaults to the request's path."""
    if instance is None:
        instance = request.url.path if request is not None else ""
    body: dict[str, Any] = {
        # Plain HTTP errors use "about:blank", whose title is the status phrase (RFC 9457 4.2.1).
        "type": problem_type_uri(slug) if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    request_id = current_request_id.get()
    if request_id is not None:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    # Slugs are written in the code, so the label's values are a fixed, small set.
    PROBLEMS.labels(slug or "about:blank").inc()
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    error = cast(DomainError, exc)
    field_errors = getattr(error, "errors", None)
    return problem_response(
        request,
        status=error.status,
        title=error.title,
        detail=error.detail,
        slug=error.slug,
        headers=error.headers,
        extra={"errors": field_errors} if field_errors else None,
    )


def _malformed_json(request: Request) -> JSONResponse:
    return problem_response(
        request,
        status=400,
        title="Malformed JSON",
        detail="The request body is not valid JSON.",
        slug="malformed-json",
    )


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [part for part in item.get("loc", ()) if isinstance(part, str | int)],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in error.errors()
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    error = cast(RequestValidationError, exc)
    field_errors = _field_errors(error)
    if any(item["type"] == "json_invalid" for item in field_errors):
        return _malformed_json(request)
    return problem_response(
        request,
        status=422,
        title="Invalid request",
        detail=f"{len(field_errors)} field(s) failed validation; see errors.",
        slug="validation-error",
        extra={"errors": field_errors},
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:  # served as GET by ops.pipeline.RequestPipeline
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return ", ".join(allowed)


# FastAPI's own 400 for a body it could not decode (invalid UTF-8, JSON nested too deeply);
# plain JSON syntax errors reach us as validation errors instead.
_FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    error = cast(StarletteHTTPException, exc)
    if error.status_code == 400 and error.detail == _FASTAPI_BODY_PARSE_ERROR:
        return _malformed_json(request)
    headers = dict(error.headers) if error.headers else {}
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    # RFC 9110 renamed 413; Python's table still has the old phrase.
    phrase = (
        "Content Too Large" if error.status_code == 413 else HTTPStatus(error.status_code).phrase
    )
    detail = error.detail if isinstance(error.detail, str) and error.detail != phrase else None
    if detail is None:
        detail = {
            404: f"Nothing is served at {request.url.path}.",
            405: f"{request.method} is not allowed here.",
        }.get(error.status_code, phrase)
    return problem_response(
        request,
        status=error.status_code,
        title=phrase,
        detail=detail,
        headers=headers or None,
    )


_SERVER_ERROR_HEADERS = {
    name.decode(): value.decode()
    for name, value in [*COMMON_SECURITY_HEADERS, (b"content-security-policy", API_CSP)]
}


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # The client learns nothing about the failure (no trace, no SQL); the log has it all.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    request_id = current_request_id.get()
    return problem_response(
        request,
        status=500,
        title="Internal server error",
        detail="The server failed to handle this request; it has been logged.",
        slug="internal-error",
        # This handler answers from outside the middleware that adds these headers.
        headers=_SERVER_ERROR_HEADERS | ({REQUEST_ID_HEADER: request_id} if request_id else {}),
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Connection refused or lost, pool exhausted, statement timeout: the request may succeed
    # later. Nothing about the database goes to the client; the log has the details.
    logger.warning(
        "database unavailable on %s %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=True,
    )
    return problem_response(
        request,
        status=503,
        title="Service unavailable",
        detail="The database is not answering; retry shortly.",
        slug="database-unavailable",
        headers={"Retry-After": "5"},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DatabaseUnavailable):
        return await _database_unavailable(request, exc)
    return await _unexpected_error(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Translated from each driver's own (``db.exceptions``): unavailable → 503, anything else 500.
    app.add_exception_handler(DatabaseError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


_DESCRIPTIONS = {
    400: "Malformed JSON.",
    404: "Not found.",
    409: "Conflict with the current state.",
    412: "If-Match did not match the current version.",
    413: "Request body too large.",
    429: "Rate limit exceeded; see Retry-After and the RateLimit-* headers.",
    503: (
        "Temporarily unavailable (database down, request or search timed out, too many searches"
        " or sign-ins in progress); see Retry-After."
    ),
    415: "Unsupported content type.",
    422: "Validation failed; `errors` lists each bad field.",
    500: "Unexpected server error (no details are disclosed).",
}


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem+json bodies for these statuses; a
    route whose causes of a status are its own describes them in ``descriptions``."""
    described = {**_DESCRIPTIONS, **(descriptions or {})}
    return {
        status: {
            "description": described.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        # Any route with parameters can answer 422; any route can be rate-limited, time out or
        # lose its database (429, 503), or fail (500).
        for status in sorted({*statuses, 422, 429, 500, 503})
    }
