"""Request parameters read on a plan made once per route (``ParamPlan``).

Reproduces FastAPI's reading of path, query and header parameters (``request_params_to_args``,
and a query model as ``_request_param_model_to_args`` gathers it); checked against FastAPI
0.165.0. ``tests/fastpath/test_params.py`` holds every planned parameter of every route equal to
FastAPI's own reading, on valid, invalid and missing input.

For every path, query and header parameter, on every request, FastAPI first works out what
kind of parameter it is (a pydantic model? a sequence? JSON? which of its names did the
request use?), then validates it: most of what reading a parameter costs goes to re-reading
a declaration that never changes (bench/RESULTS.md). The plan works it out
once, when the route's handler is built (``fastpath.routes``), for each scalar parameter of the
endpoint itself (not a list, not JSON) and for each pydantic model of query parameters (the
list's filters). At request time a scalar parameter is one lookup and the very validation
FastAPI would run (FastAPI's own function, with the parameter's own ``ModelField``: same
defaults, same error types and locations); a query model is gathered key by key as FastAPI
gathers it (repeated keys for list fields, the other keys for the model's own ``extra``
policy) and validated whole, as FastAPI does. What the plan does not cover stays FastAPI's:
dependencies, header and cookie models, bodies, cookies, list parameters. The OpenAPI document
is unchanged: it is made from the route's full declaration, which is kept as it is.

One difference, on purpose: FastAPI gathers every invalid input of a request in one 422. Here
the planned parameters are checked once the dependencies and the body have been, so a request
whose body (or a dependency's own parameter) is invalid as well gets a 422 that lists those
first problems only; fixing them shows the rest. Each 422 is still exact.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request
from fastapi._compat import ModelField, field_annotation_is_sequence, get_cached_model_fields
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_multidict_extras,
    _get_param_aliases,
    _get_param_model,
    _is_json_field,
    _validate_value_with_model_field,
)
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

Errors = list[dict[str, Any]]


def _source(request: Request, location: str) -> Mapping[str, Any]:
    if location == "path":
        return request.path_params
    if location == "header":
        return request.headers
    return request.query_params


@dataclasses.dataclass(frozen=True, slots=True)
class PlannedParam:
    """One scalar parameter: where it is read from, under which names, and its field."""

    name: str
    location: str  # "path", "query" or "header": the first part of an error's ``loc``
    keys: tuple[str, ...]  # the names a request may use, in FastAPI's order of preference
    field: ModelField

    def parse(self, request: Request) -> tuple[Any, Errors]:
        source = _source(request, self.location)
        key, value = self.keys[0], PydanticUndefined
        for name in self.keys:
            found = source.get(name)
            if found is not None:
                key, value = name, found
                break
        return _validate_value_with_model_field(
            field=self.field, value=value, values={}, loc=(self.location, key)
        )


@dataclasses.dataclass(frozen=True, slots=True)
class _ModelPart:
    """One field of a query-parameter model: its (validation name, request key) pairs, and
    whether it is a sequence (every value of a repeated key; none given is absent)."""

    aliases: tuple[tuple[str, str], ...]
    sequence: bool
    every_value: bool  # a sequence not given as JSON


@dataclasses.dataclass(frozen=True, slots=True)
class QueryModelParam:
    """A pydantic model of query parameters (``Annotated[Model, Query()]``), read as FastAPI's
    ``_request_param_model_to_args`` reads one, with each of its fields' kind worked out once
    (FastAPI re-inspects them on every request)."""

    name: str
    field: ModelField
    parts: tuple[_ModelPart, ...]
    own_keys: frozenset[str]
    is_model: bool  # the parameter is the model itself (not, say, ``Model | None``)
    takes_extra: bool  # the model allows or forbids other keys, so it sees them

    @classmethod
    def of(cls, field: ModelField, model: type[BaseModel]) -> QueryModelParam:
        parts = []
        for model_field in get_cached_model_fields(model):
            sequence = field_annotation_is_sequence(model_field.field_info.annotation)
            every_value = sequence and not _is_json_field(model_field)
            parts.append(_ModelPart(tuple(_get_param_aliases(model_field)), sequence, every_value))
        return cls(
            name=field.name,
            field=field,
            parts=tuple(parts),
            own_keys=frozenset(key for part in parts for _, key in part.aliases),
            is_model=field.field_info.annotation is model,
            takes_extra=model.model_config.get("extra") in ("allow", "forbid"),
        )

    def parse(self, request: Request) -> tuple[Any, Errors]:
        query = request.query_params
        values: dict[str, Any] = {}
        processed: set[str] = set()
        for part in self.parts:
            alias, key = next((pair for pair in part.aliases if pair[1] in query), part.aliases[0])
            value = query.getlist(key) if part.every_value else query.get(key)
            if value is not None and not (part.sequence and len(value) == 0):
                values[alias] = value
            processed.add(key)
        # The other keys: the model's own policy for extra input decides about them.
        values.update(_get_multidict_extras(query, processed))
        given: Any = values
        if not self.is_model and not (
            self.own_keys.intersection(query) or (self.takes_extra and values)
        ):
            given = PydanticUndefined
        return _validate_value_with_model_field(
            field=self.field, value=given, values={}, loc=("query",)
        )


Planned = PlannedParam | QueryModelParam


def _planned(field: ModelField, location: str) -> Planned | None:
    """The plan for a parameter, or None for one FastAPI keeps (a header or path model, JSON)."""
    if _is_json_field(field):
        return None
    model = _get_param_model(field)
    if model is not None:
        return QueryModelParam.of(field, model) if location == "query" else None
    if field_annotation_is_sequence(field.field_info.annotation):
        return None
    keys = tuple(request_key for _, request_key in _get_param_aliases(field))
    return PlannedParam(field.name, location, keys, field)


@dataclasses.dataclass(frozen=True, slots=True)
class ParamPlan:
    params: tuple[Planned, ...]

    @classmethod
    def split(cls, dependant: Dependant) -> tuple[ParamPlan, Dependant]:
        """The plan for ``dependant``'s parameters that it covers, and the dependant FastAPI
        keeps (the same, without them)."""
        planned: list[Planned] = []

        def keep(fields: list[ModelField], location: str) -> list[ModelField]:
            kept = []
            for field in fields:
                plan = _planned(field, location)
                if plan is None:
                    kept.append(field)
                else:
                    planned.append(plan)
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
            value, problems = param.parse(request)
            if problems:
                errors.extend(problems)
            else:
                values[param.name] = value
        return values, errors


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
