"""The fast path's routes (``fastpath.routes``) are the app's declared routes, copied onto one
flat list: the same routes in the same order and the same OpenAPI document as plain FastAPI's
``include_router`` gives, each copy belonging to its own app (its ``dependency_overrides``) and
running its dependencies' fast forms; the declared routes are left as FastAPI made them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from bookshelf.books.dependencies import import_slot, search_slot
from bookshelf.books.routes import router as books_router
from bookshelf.db.connections import get_connection
from bookshelf.dependencies import OPENERS
from bookshelf.fastpath.exits import fast_form
from bookshelf.fastpath.routes import lean
from bookshelf.idempotency.dependencies import get_idempotency
from bookshelf.main import create_app
from tests.conftest import make_settings
from tests.ops.support import app_routes


def _app(tmp_path: Path, *, fast_path: bool) -> FastAPI:
    return create_app(
        make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", fast_path=fast_path)
    )


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def test_the_fast_app_matches_requests_against_one_flat_route_list(tmp_path: Path) -> None:
    """No router the app would walk level by level on every request."""
    app = _app(tmp_path, fast_path=True)
    nested = [r for r in app.router.routes if not isinstance(r, APIRoute | Route | Mount)]
    assert nested == []


def test_both_modes_have_the_same_routes_in_the_same_order(tmp_path: Path) -> None:
    fast, stock = _app(tmp_path, fast_path=True), _app(tmp_path, fast_path=False)

    def described(app: FastAPI) -> list[tuple[str, str, list[str]]]:
        return [
            (type(r).__name__, getattr(r, "path", ""), sorted(getattr(r, "methods", None) or []))
            for r in app_routes(app)
        ]

    assert described(fast) == described(stock)
    assert any(not isinstance(r, APIRoute | Route | Mount) for r in stock.router.routes)
    assert fast.openapi() == stock.openapi()


def _copy_of(app: FastAPI, declared: APIRoute) -> APIRoute:
    [copy] = [
        route
        for route in app.router.routes
        if isinstance(route, APIRoute)
        and route.endpoint is declared.endpoint
        and route.methods == declared.methods
    ]
    return copy


def test_each_copy_is_its_own_apps_and_the_declared_route_is_untouched(tmp_path: Path) -> None:
    declared = next(r for r in books_router.routes if isinstance(r, APIRoute))
    handler, dependant = declared.app, declared.dependant
    first, second = _app(tmp_path, fast_path=True), _app(tmp_path, fast_path=True)

    in_first, in_second = _copy_of(first, declared), _copy_of(second, declared)

    assert in_first is not declared
    assert in_second is not in_first
    assert in_first.dependency_overrides_provider is first
    assert in_second.dependency_overrides_provider is second
    assert (declared.app, declared.dependant) == (handler, dependant)
    assert declared.dependency_overrides_provider is None
    assert in_first.dependant is dependant  # the OpenAPI document reads the full declaration


def test_every_dependency_with_an_exit_runs_it_before_the_response(tmp_path: Path) -> None:
    """Declared ``scope="function"`` (FastAPI's default would run the exit after the response
    is sent), and run in its fast form by the fast path's copies: the copy's lean dependant is
    rebuilt here as its handler was (``fastpath.routes.lean``)."""
    app = _app(tmp_path, fast_path=True)
    routes = [r for r in app_routes(app) if isinstance(r, APIRoute)]
    declared = [
        sub for route in routes for sub in _dependants(route.dependant) if sub.call in OPENERS
    ]
    run = {sub.call for route in routes for sub in _dependants(lean(route.dependant))}

    assert {get_connection, get_idempotency, search_slot, import_slot} <= {d.call for d in declared}
    assert {d.scope for d in declared} == {"function"}
    assert not run & set(OPENERS)
    assert {fast_form(d.call) for d in declared if d.call is not None} <= run
