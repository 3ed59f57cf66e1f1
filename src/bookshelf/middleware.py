"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: it costs a task and a copy per request)."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
