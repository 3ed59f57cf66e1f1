"""Error pages: what the API answers as a problem (``bookshelf.problems``, the one place that
decides an error's status, title and detail), a person in a browser reads as a page — 404,
403, 413, 422, 429 and 503 with their ``Retry-After``, 500 — never JSON and never a trace.

The problem handlers are wrapped, not replaced: for a page's path (``ops.security.is_page``)
the problem they made is turned into the page, its status and headers kept (``Retry-After``,
``Allow``). The request pipeline's own refusals (429, 413, the time limit's 503) go through
the same conversion (``middleware.RequestPipeline``, ``pages``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response

from bookshelf.ops.headers import PAGE_SECURITY_HEADERS
from bookshelf.ops.security import is_page
from bookshelf.problems import PROBLEM_MEDIA_TYPE
from bookshelf.web.exceptions import SignInRequired
from bookshelf.web.pages import NO_STORE, redirect
from bookshelf.web.site import Site
from bookshelf.web.viewer import Viewer

Handler = Callable[[Request, Any], Response | Awaitable[Response]]

# The API's words where they name the API.
_PAGE_DETAILS = {
    "urn:bookshelf:problem:email-not-verified": (
        "Confirm your email address first: follow the link in the mail we sent you. "
        "If it has expired, ask for a new one."
    ),
    "urn:bookshelf:problem:validation-error": "The address of this page is not valid.",
}
_HEADINGS = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    409: "Conflict",
    413: "Too large",
    422: "Not valid",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
# Replaced in a response that carries the API's (the 500 handler's, made outside the pipeline).
_PAGE_HEADERS = {name.decode(): value.decode() for name, value in PAGE_SECURITY_HEADERS}
_DROPPED = frozenset({"content-type", "content-length"})


def problem_pages(site: Site) -> Callable[[Response], Response]:
    """The function that turns a problem response into the error page of the same status."""

    def to_page(response: Response) -> Response:
        if response.headers.get("content-type") != PROBLEM_MEDIA_TYPE:
            return response  # a redirect (HTTPS), or a page already
        problem: dict[str, Any] = json.loads(bytes(response.body))
        status = response.status_code
        body = site.templates.render(
            "error.html",
            {
                "viewer": None,
                "path": problem.get("instance", ""),
                "status": status,
                "heading": _HEADINGS.get(status, problem.get("title", "Error")),
                "detail": _PAGE_DETAILS.get(problem.get("type", ""), problem.get("detail", "")),
                "request_id": problem.get("request_id"),
                "retry_after": response.headers.get("retry-after"),
            },
        )
        headers = {
            name: _PAGE_HEADERS.get(name, value)
            for name, value in response.headers.items()
            if name not in _DROPPED
        }
        headers["Cache-Control"] = NO_STORE
        return HTMLResponse(body, status_code=status, headers=headers)

    return to_page


def _for_pages(handler: Handler, to_page: Callable[[Response], Response]) -> Handler:
    async def handle(request: Request, error: Exception) -> Response:
        answer = handler(request, error)
        response = await answer if inspect.isawaitable(answer) else answer
        return to_page(response) if is_page(request.url.path) else response

    return handle


async def _sign_in_first(request: Request, error: Exception) -> Response:
    next_path = error.next_path if isinstance(error, SignInRequired) else None
    query = f"?{urlencode({'next': next_path})}" if next_path else ""
    response = redirect(f"/sign-in{query}")
    # A session found over clears its cookie on the way.
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    return viewer.finish(response) if viewer is not None else response


def install_error_pages(app: FastAPI, site: Site) -> Callable[[Response], Response]:
    """Wrap the app's problem handlers (installed before) for the pages' paths; return the
    conversion, for the pipeline's refusals."""
    to_page = problem_pages(site)
    for key, handler in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _for_pages(handler, to_page)
    app.add_exception_handler(SignInRequired, _sign_in_first)
    return to_page
