"""The admin port: with ``BOOKSHELF_ADMIN_PORT`` set, ``bookshelf serve`` opens a second listener
on the same host, in the same process(es), and the operating endpoints (``/health/*`` and the
metrics path) are served there and only there. The public port answers 404 for them and the
admin port answers 404 for everything else, so exposing the public port (a Service, an ingress)
never exposes probes or metrics.

Which listener a request came through is read from the socket it arrived on (the ASGI
``server`` address), never from anything the client sends.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse, Response
from starlette.types import Scope

from bookshelf.ops.security import Host

PROBES_PREFIX = "/health/"


def arrived_on(scope: Scope, port: int | None) -> bool:
    """Whether the request came in through the listener on ``port``."""
    server = scope.get("server")
    return port is not None and server is not None and server[1] == port


def on_wrong_listener(scope: Scope, *, admin_port: int | None, metrics_path: str) -> bool:
    """Whether the request asks one listener for what only the other serves: the operating
    endpoints on the public port, or anything else on the admin port. Such a request gets the
    same 404 as any unknown route, so the other listener's paths are not hinted at."""
    if admin_port is None:
        return False
    path: str = scope["path"]
    operating = path.startswith(PROBES_PREFIX) or (bool(metrics_path) and path == metrics_path)
    return arrived_on(scope, admin_port) != operating


def redirect_to_https(scope: Scope, host: Host) -> Response:
    """The same URL over HTTPS (307 keeps the method and body), on the request's parsed
    ``Host``. Not on the admin port: probes and scrapes reach it over plain HTTP inside the
    cluster, and a kubelet following a redirect to TLS would fail.

    The URL is put together from parts already checked (the host and port parsed, the path and
    query as they arrived), never from a string parsed again, which could read its host
    differently."""
    authority = host.name if host.port in (None, 80, 443) else f"{host.name}:{host.port}"
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    query: bytes = scope.get("query_string", b"")
    target = f"{path}?{query.decode('latin-1')}" if query else path
    return RedirectResponse(f"https://{authority}{target}", status_code=307)
