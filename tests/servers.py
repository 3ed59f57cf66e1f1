"""A real uvicorn server for tests that need real HTTP (Schemathesis, the browser)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI

START_TIMEOUT_SECONDS = 15.0


@contextlib.contextmanager
def running_server(app: FastAPI, **config: Any) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 from a background thread; yield its base URL.
    The server runs the app's lifespan and is stopped (and checked stopped) on exit. ``config``
    overrides ``uvicorn.Config`` options (by default uvicorn logs warnings only)."""
    options: dict[str, Any] = {"lifespan": "on", "log_level": "warning", **config}
    server = uvicorn.Server(uvicorn.Config(app=app, **options))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the uvicorn server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_SECONDS)
        listener.close()
        if thread.is_alive():
            raise RuntimeError("the uvicorn server did not stop")
