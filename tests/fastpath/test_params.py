"""Planned parameters (``fastpath.params``) are read exactly as FastAPI reads them: for every
route of the app, every planned parameter, valid, invalid and missing values give the same
value or the same errors; and over HTTP the routes behave as declared, with the fast path on
or off (``BOOKSHELF_FAST_PATH``)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI, Query
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, Json
from starlette.requests import Request

from bookshelf.config import Settings
from bookshelf.fastpath.params import ParamPlan, PlannedParam, QueryModelParam
from bookshelf.main import create_app
from tests.factories import book_payload
from tests.ops.support import api_route, app_routes

# Values that exercise what FastAPI's validation does with a string from a request: empty,
# numbers in and out of common bounds, booleans, over-long, UUIDs, dates and odd characters.
SAMPLES = [
    "",
    "x",
    "0",
    "-1",
    "20",
    "101",
    "1e3",
    "true",
    "no",
    "x" * 1001,
    "0b7c3a52-5ad6-4c57-a1b8-67b1c2ff5a8f",
    "2024-05",
    '"3", W/"4"',
    "Zu\u0308rich",
]


def _planned_routes() -> list[tuple[str, PlannedParam | QueryModelParam]]:
    app = create_app(Settings(jwt_secret="x" * 64))
    found: list[tuple[str, PlannedParam | QueryModelParam]] = []
    for route in app_routes(app):
        if isinstance(route, APIRoute):
            plan, _lean = ParamPlan.split(route.dependant)
            found += [(f"{route.name}.{param.name}", param) for param in plan.params]
    return found


PLANNED = _planned_routes()
SCALARS = [(name, p) for name, p in PLANNED if isinstance(p, PlannedParam)]
MODELS = [(name, p) for name, p in PLANNED if isinstance(p, QueryModelParam)]
# Query strings for the query models (the list's and the export's filters): each field alone,
# valid and not, repeated keys, empty values, unknown keys, and several together.
QUERIES = [
    "",
    "limit=5",
    "limit=0",
    "limit=1000",
    "limit=x",
    "limit=5&limit=6",
    "sort=-published_date",
    "sort=nonsense",
    "language=fr&sort=title",
    "language=",
    "language=xx",
    "author=Ada&author=Bo",
    "author=",
    "subject=essays&subject=",
    "q=garden+lisbon",
    "q=",
    "isbn=978-0-306-40615-7",
    "isbn=123",
    "published_from=2024-05&published_to=2024",
    "published_from=2024-13",
    "cursor=abc",
    "unknown=1",
    "limit=5&unknown=1&unknown=2",
    "Limit=5",
    "q=%00",
    "q=" + "x" * 300,
]


def _request(param: PlannedParam, value: str | None) -> Request:
    path_params: dict[str, Any] = {}
    query: list[tuple[str, str]] = []
    headers: list[tuple[bytes, bytes]] = []
    if value is not None:
        key = param.keys[0]
        if param.location == "path":
            path_params[key] = value
        elif param.location == "query":
            query.append((key, value))
        else:
            headers.append((key.lower().encode(), value.encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": urlencode(query).encode(),
        "headers": headers,
        "path_params": path_params,
    }
    return Request(scope)


def _comparable(result: tuple[dict[str, Any], list[Any]]) -> Any:
    """A result with the exceptions in errors' ``ctx`` as (type, message): two equal
    ValueErrors are not ``==``."""
    values, errors = result
    shown = []
    for error in errors:
        ctx = {
            key: (type(item).__name__, str(item)) if isinstance(item, Exception) else item
            for key, item in error.get("ctx", {}).items()
        }
        shown.append({**error, "ctx": ctx} if "ctx" in error else error)
    return values, shown


def _fastapi_reads(param: PlannedParam, request: Request) -> tuple[dict[str, Any], list[Any]]:
    source: Any = {
        "path": request.path_params,
        "query": request.query_params,
        "header": request.headers,
    }[param.location]
    return request_params_to_args([param.field], source)


def test_every_api_route_with_scalar_parameters_is_planned() -> None:
    """The hot routes are among them (the bench's GET by id reads a path id and a header; the
    list reads its filters as one model)."""
    names = {name for name, _ in PLANNED}
    assert {"get_book.book_id", "get_book.if_none_match", "update_book.if_match"} <= names
    assert {name for name, _ in MODELS} == {"list_books.query", "export_books.filters"}


@pytest.mark.parametrize(
    ("param", "query"),
    [
        pytest.param(param, query, id=f"{name}?{query:.30}")
        for (name, param), query in itertools.product(MODELS, QUERIES)
    ],
)
def test_a_planned_query_model_reads_as_fastapi_reads_it(
    param: QueryModelParam, query: str
) -> None:
    request = Request({"type": "http", "query_string": query.encode(), "headers": []})

    ours = ParamPlan((param,)).parse(request)

    assert _comparable(ours) == _comparable(
        request_params_to_args([param.field], request.query_params)
    )


@pytest.mark.parametrize(
    ("param", "value"),
    [
        pytest.param(param, value, id=f"{name}={value!r:.20}")
        for (name, param), value in itertools.product(SCALARS, [None, *SAMPLES])
    ],
)
def test_a_planned_parameter_reads_as_fastapi_reads_it(
    param: PlannedParam, value: str | None
) -> None:
    request = _request(param, value)

    ours = ParamPlan((param,)).parse(request)

    assert _comparable(ours) == _comparable(_fastapi_reads(param, request))


class Tagged(BaseModel):
    """Kinds of query-model fields the app's own models do not have."""

    model_config = ConfigDict(extra="forbid")
    tags: list[str] = []
    ids: Annotated[list[int], Field(max_length=3)] = []
    window: Json[list[int]] | None = None
    limit: int = 10


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    limit: int = 10


async def _tagged(tagged: Annotated[Tagged, Query()]) -> None: ...


async def _optional_open(opened: Annotated[Open | None, Query()] = None) -> None: ...


async def _plain_optional(tagged: Annotated[Tagged | None, Query()] = None) -> None: ...


@pytest.mark.parametrize("endpoint", [_tagged, _optional_open, _plain_optional])
@pytest.mark.parametrize(
    "query",
    ["", "tags=a&tags=b", "tags=", "ids=1&ids=2", "ids=1&ids=x", "ids=1&ids=2&ids=3&ids=4",
     "window=[1,2]", "window=nope", "window=", "limit=3", "other=1", "other=1&other=2",
     "limit=3&other=1"],
)  # fmt: skip
def test_query_model_fields_of_every_kind_read_as_fastapi_reads_them(
    endpoint: Any, query: str
) -> None:
    route = APIRoute("/x", endpoint)
    plan, lean = ParamPlan.split(route.dependant)
    [param] = plan.params
    assert isinstance(param, QueryModelParam)
    assert lean.query_params == []
    request = Request({"type": "http", "query_string": query.encode(), "headers": []})

    ours = plan.parse(request)

    assert _comparable(ours) == _comparable(
        request_params_to_args([param.field], request.query_params)
    )


def test_the_document_keeps_every_planned_parameter() -> None:
    """The OpenAPI document is made from the full declaration, planned parameters included."""
    app = create_app(Settings(jwt_secret="x" * 64))
    operation = app.openapi()["paths"]["/api/v1/books/{book_id}"]["get"]
    documented = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert documented == {("path", "book_id"), ("header", "if-none-match")}
    route = api_route(app, "get_book")
    assert [f.name for f in route.dependant.header_params] == ["if_none_match"]


async def test_an_over_long_planned_header_is_a_422_problem(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/v1/books", json=book_payload())).json()

    response = await client.get(
        f"/api/v1/books/{created['id']}", headers={"If-None-Match": '"' + "7" * 1000 + '"'}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["loc"] == ["header", "if-none-match"]
    assert error["type"] == "string_too_long"


async def test_a_planned_header_is_passed_to_the_endpoint(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/books", json=book_payload())
    tag = created.headers["etag"]

    unchanged = await client.get(created.headers["location"], headers={"If-None-Match": tag})
    changed = await client.get(created.headers["location"], headers={"If-None-Match": '"99"'})

    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert changed.status_code == 200


async def test_with_an_invalid_body_the_planned_parameters_are_checked_after_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The documented difference from FastAPI: one 422 names the body's problem first (with the
    fast path off, FastAPI's one 422 names both). It shows the plan is in use."""
    created = (await client.post("/api/v1/books", json=book_payload())).json()
    too_long = '"' + "7" * 1000 + '"'

    bad_both = await client.patch(
        f"/api/v1/books/{created['id']}", json={"page_count": -1}, headers={"If-Match": too_long}
    )
    bad_header = await client.patch(
        f"/api/v1/books/{created['id']}", json={"page_count": 3}, headers={"If-Match": too_long}
    )

    both = ["body"] if app.state.settings.fast_path else ["header", "body"]
    assert [e["loc"][0] for e in bad_both.json()["errors"]] == both
    assert [e["loc"] for e in bad_header.json()["errors"]] == [["header", "if-match"]]


def test_a_route_without_planned_parameters_is_fastapis_own(app: FastAPI) -> None:
    route = api_route(app, "read_me")
    plan, lean = ParamPlan.split(route.dependant)
    assert plan.params == ()
    assert lean == route.dependant
