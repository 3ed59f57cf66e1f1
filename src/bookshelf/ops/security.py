"""HTTP hardening that is ours to add: security headers and a per-request time limit.
(CORS, trusted hosts, HTTPS redirect and proxy headers use Starlette's and uvicorn's own
middleware, wired in ``bookshelf.middleware``.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookshelf.ops.admin import PROBES_PREFIX, arrived_on
from bookshelf.ops.headers import API_CSP, COMMON_SECURITY_HEADERS, DOCS_CSP, DOCS_PREFIXES, HSTS
from bookshelf.problems import problem_response


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"].startswith(DOCS_PREFIXES) else API_CSP
        extra = [*COMMON_SECURITY_HEADERS, (b"content-security-policy", csp)]
        if scope.get("scheme") == "https":
            extra.append(HSTS)

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


class TrustedHostsExceptProbes(TrustedHostMiddleware):
    """Starlette's Host check, except for the health probes and anything on the admin port:
    orchestrators probe pods, and Prometheus scrapes them, by IP address, with a Host header
    no allow-list would name."""

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Sequence[str], admin_port: int | None = None
    ) -> None:
        super().__init__(app, allowed_hosts=allowed_hosts)
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            scope["path"].startswith(PROBES_PREFIX) or arrived_on(scope, self.admin_port)
        ):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
