"""The API's routes as the fast path serves them (``add_routes``).

Reproduces ``app.include_router(router)`` for routers whose routes carry their full paths: the
same routes, matched in the same order, ``app.dependency_overrides`` honoured; checked against
FastAPI 0.165.0. Each route is copied onto the app's own list with a handler of its own, built
from its declaration with two changes: its scalar parameters are read on a plan (``params``),
and its dependencies made by ``dependencies.with_exit`` run in their fast form (``exits``).
``tests/fastpath/test_routes.py`` holds the copies to what the app declares.

Why not ``include_router``: FastAPI 0.165 keeps an included router as a level the app walks on
every request (matching, then dispatch through it), and builds an included route's handler
from a context of its own, where a plan set on the route would silently not be used. The
declared routes are left as FastAPI made them (the plain-FastAPI app includes them), and the
copies belong to one app: its overrides, not another app's.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect

from fastapi import APIRouter, FastAPI
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from bookshelf.fastpath.exits import fast_form, has_fast_form
from bookshelf.fastpath.params import ParamPlan, planned_endpoint

# The name the planned endpoint gets the request under, when the endpoint does not ask for it.
_REQUEST_PARAM = "_planned_request"


class _Handlers:
    """A copied route's ASGI app: its fast handler, or, while the app has dependency overrides
    (tests), the one that runs every dependency as FastAPI would, so that an override which
    takes, say, the connection shares the request's one (FastAPI caches a dependency per
    request by its callable: an override names the declared ones)."""

    __slots__ = ("_app", "_fast", "_overridden")

    def __init__(self, app: FastAPI, fast: ASGIApp, overridden: ASGIApp) -> None:
        self._app, self._fast, self._overridden = app, fast, overridden

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._overridden if self._app.dependency_overrides else self._fast
        await handler(scope, receive, send)


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add copies of ``router``'s routes to ``app``'s own route list (see the module)."""
    for route in router.routes:
        app.router.routes.append(fast_route(route, app) if isinstance(route, APIRoute) else route)


def fast_route(route: APIRoute, app: FastAPI) -> APIRoute:
    """A copy of ``route`` for ``app`` whose handler reads the plan and runs the fast forms.
    The copy keeps the full declaration (``dependant``) for what reads it later: the OpenAPI
    document, ``url_for``."""
    fast = copy.copy(route)
    fast.dependency_overrides_provider = app
    fast.app = _Handlers(
        app,
        fast=_handler(fast, lean(route.dependant)),
        overridden=_handler(fast, lean(route.dependant, fast_forms=False)),
    )
    return fast


def _handler(route: APIRoute, dependant: Dependant) -> ASGIApp:
    """The ASGI app FastAPI builds for ``route``, from ``dependant`` instead of its own."""
    full = route.dependant
    route.dependant = dependant
    try:
        handler = route.get_route_handler()
    finally:
        route.dependant = full
    return wrap_app_with_body_limit(request_response(handler), route.max_body_size)


def lean(full: Dependant, *, fast_forms: bool = True) -> Dependant:
    """``full`` with its planned parameters read by the endpoint itself, and (``fast_forms``)
    its dependencies with exits in their fast forms."""
    lean = _with_fast_forms(full) if fast_forms else full
    call = full.call
    if call is None or not inspect.iscoroutinefunction(call):
        return lean
    plan, lean = ParamPlan.split(lean)
    if not plan.params:
        return lean
    pass_request = full.request_param_name is not None
    request_param = full.request_param_name or _REQUEST_PARAM
    return dataclasses.replace(
        lean,
        call=planned_endpoint(call, plan, request_param=request_param, pass_request=pass_request),
        request_param_name=request_param,
    )


def _with_fast_forms(dependant: Dependant) -> Dependant:
    """``dependant`` with every dependency made by ``with_exit`` in its tree in its fast form."""
    dependencies = [_with_fast_forms(sub) for sub in dependant.dependencies]
    call = dependant.call
    fast_call = fast_form(call) if call is not None and has_fast_form(call) else call
    unchanged = fast_call is call and all(
        new is old for new, old in zip(dependencies, dependant.dependencies, strict=True)
    )
    if unchanged:
        return dependant
    return dataclasses.replace(dependant, call=fast_call, dependencies=dependencies)
