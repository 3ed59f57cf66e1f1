"""Request parameters read on a plan made once per route (``PlannedRoute``).

For every path, query and header parameter, on every request, FastAPI first works out what
kind of parameter it is (a pydantic model? a sequence? JSON? which of its names did the
request use?), then validates it. Measured in process, that working out is most of the cost:
~4 µs for a path parameter and ~7 for a header, so a tenth of the CPU of a GET by id (path id
and ``If-None-Match``) went to re-reading declarations that never change.

``PlannedRoute`` works it out once, when the route is built, for each *scalar* parameter of
the endpoint itself (not a model, not a list, not JSON). At request time such a parameter
is one lookup and the very validation FastAPI would run (FastAPI's own function, with the
parameter's own ``ModelField``: same defaults, same error types and locations). What the plan
does not cover stays FastAPI's: dependencies, parameter models, bodies, cookies, lists.
``tests/test_routing.py`` holds the outcome equal to FastAPI's own, parameter by parameter,
for every route of the app, on valid and invalid input; the OpenAPI document is unchanged
(it is made from the route's full declaration, which is kept as it is).

One difference, on purpose: FastAPI gathers every invalid input of a request in one 422. Here
the planned parameters are checked once the dependencies and the body have been, so a request
whose body (or a dependency's own parameter) is invalid as well gets a 422 that lists those
first problems only; fixing them shows the rest. Each 422 is still exact.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
)
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined

# The name the planned endpoint gets the request under, when the endpoint does not ask for it.
_REQUEST_PARAM = "_planned_request"

Errors = list[dict[str, Any]]


@dataclasses.dataclass(frozen=True, slots=True)
class PlannedParam:
    """One scalar parameter: where it is read from, under which names, and its field."""

    name: str
    location: str  # "path", "query" or "header": the first part of an error's ``loc``
    keys: tuple[str, ...]  # the names a request may use, in FastAPI's order of preference
    field: ModelField

    def read(self, source: Mapping[str, Any]) -> tuple[str, Any]:
        """(the name found, or the first one; its value, or ``PydanticUndefined``)."""
        for key in self.keys:
            value = source.get(key)
            if value is not None:
                return key, value
        return self.keys[0], PydanticUndefined


def _plannable(field: ModelField) -> bool:
    annotation = field.field_info.annotation
    return (
        _get_param_model(field) is None
        and not _is_json_field(field)
        and not field_annotation_is_sequence(annotation)
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ParamPlan:
    params: tuple[PlannedParam, ...]

    @classmethod
    def split(cls, dependant: Dependant) -> tuple[ParamPlan, Dependant]:
        """The plan for ``dependant``'s scalar parameters, and the dependant FastAPI keeps
        (the same, without them)."""
        planned: list[PlannedParam] = []

        def keep(fields: list[ModelField], location: str) -> list[ModelField]:
            kept = []
            for field in fields:
                if _plannable(field):
                    keys = tuple(request_key for _, request_key in _get_param_aliases(field))
                    planned.append(PlannedParam(field.name, location, keys, field))
                else:
                    kept.append(field)
            return kept

        lean = dataclasses.replace(
            dependant,
            path_params=keep(dependant.path_params, "path"),
            query_params=keep(dependant.query_params, "query"),
            header_params=keep(dependant.header_params, "header"),
        )
        return cls(tuple(planned)), lean

    def parse(self, request: Request) -> tuple[dict[str, Any], Errors]:
        """The values, or the errors, exactly as FastAPI's ``request_params_to_args``."""
        values: dict[str, Any] = {}
        errors: Errors = []
        for param in self.params:
            key, raw = param.read(self._source(request, param.location))
            value, problems = _validate_value_with_model_field(
                field=param.field, value=raw, values=values, loc=(param.location, key)
            )
            if problems:
                errors.extend(problems)
            else:
                values[param.name] = value
        return values, errors

    @staticmethod
    def _source(request: Request, location: str) -> Mapping[str, Any]:
        if location == "path":
            return request.path_params
        if location == "header":
            return request.headers
        return request.query_params


Endpoint = Callable[..., Coroutine[Any, Any, Any]]


def planned_endpoint(
    call: Endpoint, plan: ParamPlan, *, request_param: str, pass_request: bool
) -> Endpoint:
    """``call``, given its planned parameters read from the request FastAPI passes as
    ``request_param`` (and keeps for ``call`` when ``pass_request``)."""

    @functools.wraps(call)
    async def endpoint(**values: Any) -> Any:
        request = values[request_param] if pass_request else values.pop(request_param)
        parsed, errors = plan.parse(request)
        if errors:
            raise RequestValidationError(errors)
        return await call(**values, **parsed)

    return endpoint


class PlannedRoute(APIRoute):
    """An ``APIRoute`` whose endpoint's scalar path, query and header parameters are read on
    a plan made when the route is built (see the module's docstring). A route with none, or
    whose endpoint is not a coroutine function, is FastAPI's as it is."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        full = self.dependant
        call = full.call
        if call is None or not inspect.iscoroutinefunction(call):
            return super().get_route_handler()
        plan, lean = ParamPlan.split(full)
        if not plan.params:
            return super().get_route_handler()
        pass_request = full.request_param_name is not None
        request_param = full.request_param_name or _REQUEST_PARAM
        lean = dataclasses.replace(
            lean,
            call=planned_endpoint(
                call, plan, request_param=request_param, pass_request=pass_request
            ),
            request_param_name=request_param,
        )
        # FastAPI builds the handler from ``self.dependant``; the full one is put back at once
        # for what reads the declaration later (the OpenAPI document, url_for).
        self.dependant = lean
        try:
            return super().get_route_handler()
        finally:
            self.dependant = full
