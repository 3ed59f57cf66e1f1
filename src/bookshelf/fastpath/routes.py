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
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, request_response

from bookshelf.fastpath.exits import fast_form, has_fast_form
from bookshelf.fastpath.params import ParamPlan, planned_endpoint

# The name the planned endpoint gets the request under, when the endpoint does not ask for it.
_REQUEST_PARAM = "_planned_request"


class _Overrides:
    """``app.dependency_overrides`` as a copied route's provider: an override of a dependency
    made by ``with_exit`` applies to its fast form too, which is what the copy runs."""

    __slots__ = ("_app",)

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    @property
    def dependency_overrides(self) -> dict[Any, Any]:
        overrides = self._app.dependency_overrides
        if not overrides:
            return overrides
        fast = {fast_form(call): o for call, o in overrides.items() if has_fast_form(call)}
        return {**overrides, **fast} if fast else overrides


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add copies of ``router``'s routes to ``app``'s own route list (see the module)."""
    provider = _Overrides(app)
    for route in router.routes:
        app.router.routes.append(
            fast_route(route, provider) if isinstance(route, APIRoute) else route
        )


def fast_route(route: APIRoute, provider: Any) -> APIRoute:
    """A copy of ``route`` whose handler reads the plan, runs the fast forms and asks
    ``provider`` for overrides. The copy keeps the full declaration (``dependant``) for what
    reads it later: the OpenAPI document, ``url_for``."""
    fast = copy.copy(route)
    fast.dependency_overrides_provider = provider
    full = route.dependant
    # FastAPI builds the handler from ``dependant``: the lean one, just for that.
    fast.dependant = _lean(full)
    try:
        handler = fast.get_route_handler()
    finally:
        fast.dependant = full
    fast.app = wrap_app_with_body_limit(request_response(handler), fast.max_body_size)
    return fast


def _lean(full: Dependant) -> Dependant:
    """``full`` with its planned parameters read by the endpoint itself and its dependencies'
    fast forms."""
    lean = _with_fast_forms(full)
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
