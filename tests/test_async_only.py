"""FastAPI runs a plain ``def`` endpoint or dependency in a worker thread: a thread hop per
call that costs more than the work itself (about 2.5x the CPU of an ``async def``). None may
creep in."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from bookshelf.main import create_app
from tests.conftest import make_settings


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # include_router() keeps the router
        if included is not None:
            yield from _api_routes(included.routes)


def _is_async(call: Any) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    # Security schemes such as OAuth2PasswordBearer are instances with an async __call__.
    return not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__)


def test_every_endpoint_and_dependency_is_async(sqlite_url: str) -> None:
    app = create_app(make_settings(sqlite_url))
    routes = list(_api_routes(app.routes))
    assert len(routes) > 20
    sync = sorted(
        f"{route.path} {sorted(route.methods)}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in _calls(route.dependant)
        if not _is_async(call)
    )
    assert sync == []
