"""HTTP hardening that is ours to add: security headers and a per-request time limit.
(CORS, trusted hosts, HTTPS redirect and proxy headers use Starlette's and uvicorn's own
middleware, configured in ``bookshelf.main``.)"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookshelf.problems import problem_response

# The API serves JSON only: nothing may be loaded or framed from its responses.
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc: our own scripts and styles (plus the inline bootstrap each page has),
# ReDoc's blob: worker, images from data: URLs.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
_DOCS_PREFIXES = ("/docs", "/redoc")
_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"].startswith(_DOCS_PREFIXES) else API_CSP
        extra = [*_COMMON, (b"content-security-policy", csp)]
        if scope.get("scheme") == "https":
            extra.append(_HSTS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestTimeout:
    """Abandon a request that runs longer than the limit: 503 if nothing was sent yet."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, send_tracking)
        except TimeoutError:
            if started:
                raise
            response = problem_response(
                None,
                status=503,
                title="Request timed out",
                detail=f"The request took longer than {self.seconds:g} s and was abandoned.",
                slug="timeout",
                instance=scope["path"],
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
