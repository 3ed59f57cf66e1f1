"""FastAPI without two of its middleware layers (``BookshelfAPI``).

Reproduces ``FastAPI.build_middleware_stack`` (Starlette's error layers around the app's own
middleware, the exception handlers, then the exit stack FastAPI's request handling requires)
without FastAPI's telemetry and app-wide body-limit layers; checked against FastAPI 0.165.0.
``tests/fastpath/test_middleware.py`` holds the stack equal to FastAPI's own minus those two,
so a layer a later FastAPI adds shows up there.

Each layer costs every request a call; those two serve features the service gets elsewhere
(tracing is OpenTelemetry's instrumentation, opt-in; the body cap is ``ops.pipeline``'s).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp

# FastAPI's layers that ``BookshelfAPI`` leaves out, by class name.
LEFT_OUT = frozenset({"ExceptionTelemetryMiddleware", "AppBodyLimitMiddleware"})


class BookshelfAPI(FastAPI):
    """FastAPI with its middleware stack minus the layers in ``LEFT_OUT``."""

    def build_middleware_stack(self) -> ASGIApp:
        error_handler = None
        handlers: dict[Any, Any] = {}
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        app: ASGIApp = AsyncExitStackMiddleware(self.router)
        app = ExceptionMiddleware(app, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ServerErrorMiddleware(app, handler=error_handler, debug=self.debug)
