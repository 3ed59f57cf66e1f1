"""The admin port: with ``BOOKSHELF_ADMIN_PORT`` set, ``bookshelf serve`` opens a second listener
on the same host, in the same process(es), and the operating endpoints (``/health/*`` and the
metrics path) are served there and only there. The public port answers 404 for them and the
admin port answers 404 for everything else, so exposing the public port (a Service, an ingress)
never exposes probes or metrics.

Which listener a request came through is read from the socket it arrived on (the ASGI
``server`` address), never from anything the client sends.
"""

from __future__ import annotations

from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from bookshelf.problems import problem_response

PROBES_PREFIX = "/health/"


def arrived_on(scope: Scope, port: int | None) -> bool:
    """Whether the request came in through the listener on ``port``."""
    server = scope.get("server")
    return port is not None and server is not None and server[1] == port


class AdminPortSplit:
    """Serve the operating endpoints on the admin port only, and nothing else there."""

    def __init__(self, app: ASGIApp, *, admin_port: int, metrics_path: str) -> None:
        self.app = app
        self.admin_port = admin_port
        self.metrics_path = metrics_path

    def is_operating_path(self, path: str) -> bool:
        return path.startswith(PROBES_PREFIX) or (
            bool(self.metrics_path) and path == self.metrics_path
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and arrived_on(scope, self.admin_port) != self.is_operating_path(
            scope["path"]
        ):
            # The same answer as any unknown route: the other listener's paths are not hinted at.
            response = problem_response(
                None,
                status=404,
                title="Not Found",
                detail=f"Nothing is served at {scope['path']}.",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class HTTPSRedirectExceptAdminPort(HTTPSRedirectMiddleware):
    """Starlette's redirect to HTTPS, except on the admin port: probes and scrapes reach it over
    plain HTTP inside the cluster, and a kubelet following a redirect to TLS would fail."""

    def __init__(self, app: ASGIApp, *, admin_port: int | None) -> None:
        super().__init__(app)
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if arrived_on(scope, self.admin_port):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
