"""``RequestPipeline``: every production feature a request goes through, in one pure-ASGI layer
with one ``send`` wrapper (its place in the stack: ``middleware``).

Every layer costs a call, and a closure per wrapped ``send``, on every request, so what every
request needs is here, in one layer (measured in bench/RESULTS.md); what only some deployments
turn on stays a layer of its own that is absent otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bookshelf.api import API_PREFIX
from bookshelf.auth.tokens import TokenSigner
from bookshelf.config import Settings
from bookshelf.exceptions import HeadAnswered
from bookshelf.ops import metrics
from bookshelf.ops.admin import PROBES_PREFIX, arrived_on, on_wrong_listener, redirect_to_https
from bookshelf.ops.observability import Observations
from bookshelf.ops.ratelimit import (
    RateLimits,
    budget_for,
    page_budget,
    too_many_requests,
    verdict_headers,
)
from bookshelf.ops.request_id import HEADER_KEY, current_request_id, well_formed_request_id
from bookshelf.ops.security import HostAllowList, is_page, parse_host, security_headers
from bookshelf.problems import problem_response

# The bulk import's body may be larger than any other (BOOKSHELF_IMPORT_MAX_BODY_BYTES).
IMPORT_PATH = f"{API_PREFIX}/books/import"
# The web app's upload form for it, with the same cap.
PAGE_IMPORT_PATH = "/books/import"
_CORS_ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-ID",
    # Read-your-writes with replicas (db.routing): a browser app sends back what a write said.
    "Bookshelf-Read-After",
]
_CORS_EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Link",
    "Retry-After",
    "X-Request-ID",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "Bookshelf-Read-After",
]


class _Exchange:
    """One request's state in the pipeline, and its one ``send`` wrapper: it records the
    status, adds the pipeline's headers to the response and drops the body of a ``HEAD``."""

    __slots__ = (
        "deadline",
        "extra_headers",
        "head",
        "head_scope",
        "send_downstream",
        "started",
        "status",
        "stream_seconds",
    )

    def __init__(self, send: Send, extra_headers: list[tuple[bytes, bytes]], head: bool) -> None:
        self.send_downstream = send
        self.extra_headers = extra_headers
        self.head = head
        # The scope of a HEAD passed on as a GET (``RequestPipeline._inner``): the method is
        # put back when the response starts, because the server reads it then to send the
        # headers of a GET without its body (uvicorn: the Content-Length of a body never
        # sent would otherwise fail the response and close the connection).
        self.head_scope: Scope | None = None
        self.started = False
        self.status = 500
        # The request's time limit, moved once the response starts (see RequestPipeline).
        self.deadline: asyncio.Timeout | None = None
        self.stream_seconds = 0.0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message["headers"] = [*message.get("headers", ()), *self.extra_headers]
            if self.head_scope is not None:
                self.head_scope["method"] = "HEAD"
        elif (
            message.get("more_body", False)
            and self.deadline is not None
            and not self.deadline.expired()
        ):
            # A streamed body (the bulk export) gets the stream's own time limit from its first
            # part on; a body sent whole (every other response) moves no timer.
            self.deadline.reschedule(asyncio.get_running_loop().time() + self.stream_seconds)
            self.deadline = None
        if self.head and message["type"] == "http.response.body":
            # HEAD is served as GET (same status and headers, Content-Length included) without
            # the body: uptime monitors and link checkers use it. The response ends with the
            # first body message, and a streamed one is stopped there: no work for the rest.
            await self.send_downstream({"type": "http.response.body", "body": b""})
            if message.get("more_body", False):
                raise HeadAnswered
            return
        await self.send_downstream(message)


class RequestPipeline:
    """Every production feature a request goes through, in this order, in one pure-ASGI layer:

    1. request id (``X-Request-ID`` kept when well-formed, else generated), echoed back;
    2. the admin-port split and the HTTPS redirect (``ops.admin``); the ``Host`` header parsed
       as a host and port (400 otherwise), then the allow-list (``ops.security``);
    3. security headers on every response, and CORS (Starlette's) for requests with ``Origin``;
    4. the body cap: 413 for a declared length over ``BOOKSHELF_MAX_BODY_BYTES`` (the bulk
       import's: ``BOOKSHELF_IMPORT_MAX_BODY_BYTES``);
    5. the time limit, over everything below: a 503 problem if nothing was sent when it runs
       out; a streamed body has ``BOOKSHELF_STREAM_TIMEOUT_SECONDS`` from its first part on;
    6. rate limits (``ops.ratelimit``) for the API and the web app's pages, with their
       ``RateLimit-*`` headers;
    7. a chunked body counted against the cap as it arrives; ``HEAD`` served as ``GET``
       without the body;
    8. after the response: metrics and the access-log event (``ops.observability``).

    Refusals (404 on the wrong listener, 400 for a malformed or unknown host, the redirect,
    429, 413, 503) are answered through the same ``send`` as any response, so they are
    counted, logged and carry the request id and the security headers; to a web page's
    request, as the web app's error page (``pages``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        rate_limits: RateLimits | None,
        signer: TokenSigner,
        observations: Observations,
        pages: Callable[[Response], Response] | None = None,
    ) -> None:
        self.app = app
        # Turns a refusal's problem into the web app's error page (``web.errors``).
        self.pages = pages
        self.rate_limits = rate_limits
        self.signer = signer
        self.observations = observations
        self.admin_port = settings.admin_port
        self.metrics_path = settings.metrics_path
        self.hosts = (
            HostAllowList(settings.allowed_host_list)
            if settings.allowed_host_list != ["*"]
            else None
        )
        self.https_redirect = settings.https_redirect
        self.max_body_bytes = settings.max_body_bytes
        # Routes whose bodies may be larger than the rest: the bulk import.
        self.body_caps = {
            IMPORT_PATH: settings.import_max_body_bytes,
            PAGE_IMPORT_PATH: settings.import_max_body_bytes,
        }
        self.timeout_seconds = settings.request_timeout_seconds
        self.stream_seconds = settings.stream_timeout_seconds
        self.cors: ASGIApp | None = (
            CORSMiddleware(
                self._inner_after_cors,
                allow_origins=settings.cors_origin_list,
                allow_credentials=settings.cors_allow_credentials,
                allow_methods=["GET", "POST", "PATCH", "DELETE"],
                allow_headers=_CORS_ALLOWED_HEADERS,
                expose_headers=_CORS_EXPOSED_HEADERS,
            )
            if settings.cors_origin_list
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # One pass over the request headers for everything the pipeline reads.
        sent_id = host = content_length = authorization = None
        has_origin = chunked = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value if host is None else b""  # two Host lines: malformed (RFC 9110)
            elif name == b"content-length":
                content_length = value
            elif name == b"authorization":
                authorization = value
            elif name == b"origin":
                has_origin = True
            elif name == b"transfer-encoding":
                chunked = True
            elif name == HEADER_KEY:
                sent_id = value
        request_id = well_formed_request_id(sent_id)
        current_request_id.set(request_id)
        path: str = scope["path"]
        head = scope["method"] == "HEAD"
        exchange = _Exchange(
            send,
            [(HEADER_KEY, request_id.encode("ascii")), *security_headers(path, scope["scheme"])],
            head,
        )
        metrics.IN_FLIGHT.inc()
        try:
            refusal = self._refusal(scope, path, host, content_length)
            if refusal is not None:
                await self._page(path, refusal)(scope, receive, exchange.send)
            elif has_origin and self.cors is not None:
                await self.cors(scope, receive, exchange.send)
            else:
                # A body without a declared length is counted as it streams.
                chunked = chunked and content_length is None
                await self._inner(scope, receive, exchange, authorization, chunked)
        finally:
            metrics.IN_FLIGHT.dec()
            if head:  # served as GET below; logged and counted as the HEAD it is
                scope["method"] = "HEAD"
            app = scope.get("app")
            database = getattr(app.state, "database", None) if app is not None else None
            self.observations.record(
                scope,
                status=exchange.status,
                elapsed=time.perf_counter() - started,
                request_id=request_id,
                database=database,
            )

    def _refusal(
        self, scope: Scope, path: str, host: bytes | None, content_length: bytes | None
    ) -> Response | None:
        """The answer to a request refused before it reaches the app, if it is one."""
        if on_wrong_listener(scope, admin_port=self.admin_port, metrics_path=self.metrics_path):
            return problem_response(
                None,
                status=404,
                title="Not Found",
                detail=f"Nothing is served at {path}.",
                instance=path,
            )
        # A Host header that is not a host and port is refused wherever it arrives (RFC 9110
        # 7.2), so nothing downstream (the redirect, links, logs) reads a host out of it.
        parsed_host = None if host is None else parse_host(host)
        if host is not None and parsed_host is None:
            return _bad_host("The Host header is not a host name with an optional port.")
        on_admin_port = arrived_on(scope, self.admin_port)
        if (
            self.hosts is not None
            and not path.startswith(PROBES_PREFIX)
            and not on_admin_port
            and not self.hosts.allows(parsed_host)
        ):
            # Probes and scrapes (orchestrators, Prometheus) name a pod by its IP address.
            return _bad_host("The Host header names a host this service does not serve.")
        if self.https_redirect and not on_admin_port and scope["scheme"] == "http":
            if parsed_host is None:  # HTTP/1.0 may send none: no host to redirect to
                return _bad_host("The request has no Host header to redirect to.")
            return redirect_to_https(scope, parsed_host)
        cap = self.body_caps.get(path, self.max_body_bytes)
        if content_length is not None and (
            not content_length.isdigit() or int(content_length) > cap
        ):
            return problem_response(
                None,
                status=413,
                title="Content Too Large",
                detail=_too_large(cap),
                instance=path,
                headers={"Connection": "close"},
            )
        return None

    def _budget(
        self, scope: Scope, authorization: bytes | None
    ) -> tuple[str, tuple[str, ...]] | None:
        """The rate-limit budget a request counts against, and for whom (None: not counted)."""
        path: str = scope["path"]
        if path.startswith(API_PREFIX):
            return budget_for(scope, path[len(API_PREFIX) :], authorization, self.signer)
        return page_budget(scope, path) if is_page(path) else None

    def _page(self, path: str, refusal: Response) -> Response:
        """A refusal as the web app's error page when ``path`` is one of its pages (a person
        reads it in a browser), else the problem itself."""
        if self.pages is not None and is_page(path):
            return self.pages(refusal)
        return refusal

    async def _inner_after_cors(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The rest of the pipeline, for a request CORS let through. ``send`` is CORS's wrapper
        around the outer exchange's, which still records the status and adds its headers; this
        inner exchange adds the rate-limit headers."""
        inner = _Exchange(send, [], scope["method"] == "HEAD")
        await self._inner(
            scope,
            receive,
            inner,
            _header(scope, b"authorization"),
            _header(scope, b"content-length") is None
            and _header(scope, b"transfer-encoding") is not None,
        )

    async def _inner(
        self,
        scope: Scope,
        receive: Receive,
        exchange: _Exchange,
        authorization: bytes | None,
        chunked: bool,
    ) -> None:
        path: str = scope["path"]
        try:
            # The time limit covers everything awaited here, the rate limiter's store included.
            async with asyncio.timeout(self.timeout_seconds) as deadline:
                exchange.deadline, exchange.stream_seconds = deadline, self.stream_seconds
                counted = None if self.rate_limits is None else self._budget(scope, authorization)
                if counted is not None and self.rate_limits is not None:
                    budget, identities = counted
                    verdict = await self.rate_limits.hit(budget, identities)
                    if verdict is not None:
                        exchange.extra_headers.extend(verdict_headers(verdict))
                        if not verdict.allowed:
                            refusal = too_many_requests(verdict, budget, path)
                            await self._page(path, refusal)(scope, receive, exchange.send)
                            return
                if chunked:
                    receive = _counting(receive, self.body_caps.get(path, self.max_body_bytes))
                if exchange.head:
                    scope["method"] = "GET"
                    exchange.head_scope = scope
                await self.app(scope, receive, exchange.send)
        except HeadAnswered:
            return
        except TimeoutError:
            if exchange.started:
                raise
            response = problem_response(
                None,
                status=503,
                title="Request timed out",
                detail=f"The request took longer than {self.timeout_seconds:g} s and was "
                "abandoned.",
                slug="timeout",
                instance=path,
                headers={"Retry-After": "1"},
            )
            await self._page(path, response)(scope, receive, exchange.send)


def _bad_host(detail: str) -> Response:
    # Nothing of what was asked is echoed back (the instance is empty): the Host is not ours.
    return problem_response(None, status=400, title="Bad Request", detail=detail, instance="")


def _too_large(cap: int) -> str:
    return f"The request body may be at most {cap} bytes."


def _counting(receive: Receive, cap: int) -> Receive:
    """A body without a declared length (chunked) is counted as it streams; crossing the cap
    raises a 413 inside the request, rendered by the problem handlers."""
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise HTTPException(status_code=413, detail=_too_large(cap))
        return message

    return counting_receive


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == wanted:
            return value
    return None
