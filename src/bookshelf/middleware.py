"""The middleware stack: every middleware the app runs, in order, is added here and only here
(``install_middleware``, called by ``main.create_app``).

Outermost first, as a request meets them (each only when its setting turns it on):

1. OpenTelemetry tracing (``BOOKSHELF_TRACING``; ``ops.tracing``)
2. ``ProxyHeadersMiddleware`` (uvicorn): client address and scheme from trusted proxies
3. ``RequestObservability`` (``ops.observability``): request id, access log, metrics, outside
   everything below so 413s, 429s and timeouts are logged and counted too
4. ``AdminPortSplit`` (``ops.admin``): probes and metrics only on the admin port
5. ``TrustedHostsExceptProbes`` (``ops.security``): the ``Host`` allow-list
6. ``HTTPSRedirectExceptAdminPort`` (``ops.admin``)
7. ``SecurityHeaders`` (``ops.security``)
8. ``CORSMiddleware`` (Starlette)
9. ``RateLimitMiddleware`` (``ops.ratelimit``)
10. ``BodySizeLimit`` (below): 413 for a body over ``BOOKSHELF_MAX_BODY_BYTES``
11. ``RequestTimeout`` (``ops.security``): a 503 problem past the time limit
12. ``HeadAsGet`` (below): ``HEAD`` served as ``GET`` without the body

All are pure ASGI (no ``BaseHTTPMiddleware``: it costs a task and a copy per request). The
classes that belong to operations live in ``ops/``; this module owns the order.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bookshelf.api import API_PREFIX
from bookshelf.config import ConfigurationError, Settings
from bookshelf.ops.admin import AdminPortSplit, HTTPSRedirectExceptAdminPort
from bookshelf.ops.logging import build_access_log
from bookshelf.ops.observability import RequestObservability
from bookshelf.ops.ratelimit import RateLimitMiddleware
from bookshelf.ops.security import RequestTimeout, SecurityHeaders, TrustedHostsExceptProbes
from bookshelf.ops.tracing import install_tracing, tracing_available
from bookshelf.problems import problem_response


class BodySizeLimit:
    """Refuse request bodies over the cap with a 413 problem.

    A declared ``Content-Length`` over the cap is answered before the app runs. A body without
    one (chunked) is counted as it streams; crossing the cap raises an HTTP 413 inside the
    request, which the problem handlers render like any other HTTP error.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> str:
        return f"The request body may be at most {self.max_body_bytes} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_body_bytes:
                    response = problem_response(
                        None,
                        status=413,
                        title="Content Too Large",
                        detail=self._too_large(),
                        instance=scope["path"],
                        headers={"Connection": "close"},
                    )
                    await response(scope, receive, send)
                    return
                await self.app(scope, receive, send)
                return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(status_code=413, detail=self._too_large())
            return message

        await self.app(scope, counting_receive, send)


class HeadAsGet:
    """Answer ``HEAD`` on every ``GET`` route (FastAPI routes only ``GET``): the request is
    served as a ``GET`` and the body is dropped, so the status and every header (``ETag``,
    ``Link``, ``Content-Length``) are exactly the ``GET``'s, with no work beyond it. Uptime
    monitors and link checkers use ``HEAD``. Innermost, so logs, metrics and rate limits see
    the request as the ``HEAD`` it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # The same scope, so the route the router finds is seen by the access log and metrics
        # too; they read the method after the response, when it says HEAD again.
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, send_without_body)
        finally:
            scope["method"] = "HEAD"


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Build the stack listed in the module docstring. The last added runs first, so this
    function reads bottom-up; ``app.state.tracer_provider`` is set (None without tracing)."""
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestTimeout, seconds=settings.request_timeout_seconds)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    if app.state.rate_limits is not None:
        app.add_middleware(
            RateLimitMiddleware,
            limits=app.state.rate_limits,
            signer=app.state.auth.signer,
            api_prefix=API_PREFIX,
        )
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=[
                "ETag",
                "Location",
                "Link",
                "Retry-After",
                "X-Request-ID",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
        )
    app.add_middleware(SecurityHeaders)
    if settings.https_redirect:
        app.add_middleware(HTTPSRedirectExceptAdminPort, admin_port=settings.admin_port)
    if settings.allowed_host_list != ["*"]:
        app.add_middleware(
            TrustedHostsExceptProbes,
            allowed_hosts=settings.allowed_host_list,
            admin_port=settings.admin_port,
        )
    if settings.admin_port is not None:
        app.add_middleware(
            AdminPortSplit, admin_port=settings.admin_port, metrics_path=settings.metrics_path
        )
    # Outside everything else, so 413s, 429s and timeouts are logged and counted too.
    app.add_middleware(
        RequestObservability,
        api_prefix=API_PREFIX,
        access_log=build_access_log(settings.log_level, json=settings.use_json_logs),
    )
    if settings.trusted_proxy_list:
        # Rewrites the client address and scheme from X-Forwarded-* sent by trusted proxies.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    # Last, so outermost: a span covers everything the request went through.
    app.state.tracer_provider = None
    if settings.tracing:
        if not tracing_available():
            raise ConfigurationError(
                "BOOKSHELF_TRACING is on but the otel extra is not installed "
                "(pip install 'bookshelf[otel]')"
            )
        app.state.tracer_provider = install_tracing(app, settings.tracing_service_name)
