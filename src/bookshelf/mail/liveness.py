"""The worker's liveness, tied to its delivery loop, and the little HTTP server that reports it
(``bookshelf worker --metrics-port``: ``/metrics`` and ``/health/live``).

prometheus_client serves from a thread of its own, so a worker whose delivery loop hangs would
still answer every scrape: a probe of ``/metrics`` says only that the process exists. Instead
the loop beats a ``Heartbeat`` on every turn, and ``/health/live`` answers 503 once the last
beat is older than one lease plus one poll interval: by then the message in hand (a send ends
within ``BOOKSHELF_SMTP_SEND_TIMEOUT_SECONDS``, below the lease) has been given up to another
worker, so this one is stuck and restarting it loses nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app

LIVE_PATH = "/health/live"
METRICS_PATH = "/metrics"

StartResponse = Callable[..., Any]


class Heartbeat:
    """When the delivery loop last made progress (monotonic clock)."""

    def __init__(self, stall_after_seconds: float) -> None:
        self.stall_after_seconds = stall_after_seconds
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self.last_beat

    def is_stalled(self) -> bool:
        return self.silent_for() > self.stall_after_seconds


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> Iterable[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [payload]


def probe_app(heartbeat: Heartbeat) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """WSGI: the metrics, the loop's liveness, and 404 for anything else."""
    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == LIVE_PATH:
            silent = round(heartbeat.silent_for(), 1)
            if heartbeat.is_stalled():
                return _json(
                    start_response,
                    "503 Service Unavailable",
                    {"status": "stalled", "delivery_loop_silent_seconds": silent},
                )
            return _json(
                start_response, "200 OK", {"status": "live", "delivery_loop_silent_seconds": silent}
            )
        return _json(start_response, "404 Not Found", {"detail": f"Nothing is served at {path}."})

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes and scrapes every few seconds are not worth a log line each."""


def serve_probes(heartbeat: Heartbeat, host: str, port: int) -> WSGIServer:
    """Serve ``probe_app`` from a daemon thread (it must answer while the loop is stuck)."""
    server = make_server(
        host, port, probe_app(heartbeat), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="worker-probes", daemon=True).start()
    return server
