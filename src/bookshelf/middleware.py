"""The middleware stack: every layer the app runs, in order, is built here and only here
(``install_middleware``, called by ``main.create_app``).

Outermost first, as a request meets them:

1. Starlette's ``ServerErrorMiddleware``: an unhandled exception becomes the 500 problem
2. OpenTelemetry tracing (only with ``BOOKSHELF_TRACING``; ``ops.tracing``)
3. ``ProxyHeadersMiddleware`` (uvicorn; only with trusted proxies): client address and scheme
4. ``RequestPipeline`` (``ops.pipeline``): every production feature a request goes through,
   in one layer
5. ``ReadAfterMiddleware`` (``db.routing``; only with replicas): a write's WAL position on its
   response, for read-your-writes
6. Starlette's ``ExceptionMiddleware``: the problem handlers (``problems``)
7. FastAPI's ``AsyncExitStackMiddleware`` (its request handling requires it), then the router

Layers 1, 6 and 7 are FastAPI's own (``FastAPI.build_middleware_stack``). With the fast path
off, FastAPI's telemetry and app-wide body-limit layers run too, after the first; with it on
(``fastpath.middleware.BookshelfAPI``) they are left out: tracing is OpenTelemetry's
instrumentation (opt-in), and the body cap is the pipeline's.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from bookshelf.config import ConfigurationError, Settings
from bookshelf.db.routing import ReadAfterMiddleware
from bookshelf.ops.logging import AccessLog, ContextAccessLog
from bookshelf.ops.observability import Observations
from bookshelf.ops.pipeline import RequestPipeline
from bookshelf.ops.tracing import install_tracing, trace_ids_processor, tracing_available


def install_middleware(
    app: FastAPI, settings: Settings, *, pages: Callable[[Response], Response] | None = None
) -> None:
    """Build the stack listed in the module docstring. The last added runs first, so this
    function reads bottom-up; ``app.state.tracer_provider`` is set (None without tracing).
    ``pages`` renders a refusal of a web page as the web app's error page."""
    if settings.tracing and not tracing_available():
        raise ConfigurationError(
            "BOOKSHELF_TRACING is on but the otel extra is not installed "
            "(pip install 'bookshelf[otel]')"
        )
    # With tracing on, the access line carries the request's trace and span ids.
    app.state.access_log = (
        ContextAccessLog(
            settings.log_level, json=settings.use_json_logs, context=(trace_ids_processor(),)
        )
        if settings.tracing
        else AccessLog(settings.log_level, json=settings.use_json_logs)
    )
    if app.state.read_router is not None:
        app.add_middleware(ReadAfterMiddleware, router=app.state.read_router)
    app.add_middleware(
        RequestPipeline,
        settings=settings,
        rate_limits=app.state.rate_limits,
        signer=app.state.auth.signer,
        observations=Observations(app.state.access_log),
        pages=pages,
    )
    if settings.trusted_proxy_list:
        # Rewrites the client address and scheme from X-Forwarded-* sent by trusted proxies.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    # Last, so outermost: a span covers everything the request went through.
    app.state.tracer_provider = None
    if settings.tracing:
        app.state.tracer_provider = install_tracing(app, settings.tracing_service_name)
