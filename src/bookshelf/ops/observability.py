"""What every request leaves behind once answered: its metrics and one access-log event.

Both are recorded by ``ops.pipeline.RequestPipeline`` after the response has been sent. The
metric children are looked up once per (method, route, status class) and kept, instead of
going through ``labels()`` on every request; the access event's fields are collected during
the request and rendered and written after it (``ops.logging.AccessLog``), in one write for
all the requests that finished in the same turn of the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.metrics import Counter, Histogram
from starlette.types import Scope

from bookshelf.ops import metrics
from bookshelf.ops.logging import AccessLog

if TYPE_CHECKING:
    from bookshelf.db.database import Database

UNMATCHED_ROUTE = "<unmatched>"
# A client may send any method token: the others share one label, so it cannot grow the
# metrics' label sets (or the children cached below) one made-up method at a time.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/books/{book_id}``): bounded label values."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class Observations:
    """Counts and logs answered requests; one per app."""

    def __init__(self, access_log: AccessLog) -> None:
        self.access_log = access_log
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def _metric_children(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        key = (method, route, status // 100)
        children = self._children.get(key)
        if children is None:
            # The key space is bounded: methods, route templates and five status classes.
            labels = (method, route, f"{status // 100}xx")
            children = (metrics.REQUESTS.labels(*labels), metrics.LATENCY.labels(*labels))
            self._children[key] = children
        return children

    def record(
        self,
        scope: Scope,
        *,
        status: int,
        elapsed: float,
        request_id: str,
        database: Database | None,
    ) -> None:
        method: str = scope["method"]
        route = route_template(scope)
        requests, latency = self._metric_children(
            method if method in KNOWN_METHODS else OTHER_METHOD, route, status
        )
        requests.inc()
        latency.observe(elapsed)
        if database is not None:
            checked_out, size = database.pool_status()
            metrics.POOL_SIZE.set(size)
            metrics.POOL_CHECKED_OUT.set(checked_out)
        state = scope.get("state") or {}
        client = scope.get("client")
        self.access_log.add(
            method=method,
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            user_id=str(state["user_id"]) if "user_id" in state else None,
            client=client[0] if client else None,
            request_id=request_id,
        )
