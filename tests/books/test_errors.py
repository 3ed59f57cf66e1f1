"""Errors: RFC 9457 problem+json for every failure, body limits, media types, 404/405/500."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshelf.books.models import books
from bookshelf.main import create_app
from tests.conftest import make_settings
from tests.factories import BOOKS, book_payload, count_rows, sign_in
from tests.factories import assert_problem as assert_problem_in_full
from tests.ops.support import http as in_process_client

MIB = 1024 * 1024


def assert_problem(
    response: httpx.Response, status: int, problem_type: str, instance: str = BOOKS
) -> dict[str, Any]:
    """Every problem on this page is checked in full, instance included."""
    return assert_problem_in_full(response, status, problem_type, instance=instance)


def json_bytes(size: int | None = None) -> bytes:
    """A valid book as JSON, padded with trailing whitespace to exactly ``size`` bytes."""
    body = json.dumps(book_payload()).encode()
    return body if size is None else body + b" " * (size - len(body))


async def stream(body: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


@asynccontextmanager
async def client_for(
    database_url: str, configure: Callable[[FastAPI], None] | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app of our own, with custom settings and routes added before it starts."""
    app = create_app(make_settings(database_url, **settings))
    if configure is not None:
        configure(app)
    async with (
        app.router.lifespan_context(app),
        in_process_client(app, headers=await sign_in(app)) as client,
    ):
        yield client


JSON = {"Content-Type": "application/json"}


# --- malformed bodies and media types --------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b'{"title": ', b"{'title': 'x'}", b'{"title": "x",}', b"nope", b'{"a": 1} {"b": 2}']
)
async def test_malformed_json_returns_400_problem(
    client: httpx.AsyncClient, engine: AsyncEngine, body: bytes
) -> None:
    response = await client.post(BOOKS, content=body, headers=JSON)

    problem = assert_problem(response, 400, "malformed-json")
    assert problem["title"] == "Malformed JSON"
    assert await count_rows(engine, books) == 0


@pytest.mark.parametrize(
    "body",
    [b'{"title": "\xff\xfe", "authors": ["a"]}', b"[" * 100_000 + b"]" * 100_000],
    ids=["invalid-utf8", "nested-too-deep"],
)
async def test_undecodable_json_returns_400_malformed_json_problem(
    client: httpx.AsyncClient, body: bytes
) -> None:
    assert_problem(await client.post(BOOKS, content=body, headers=JSON), 400, "malformed-json")


async def test_malformed_json_in_patch_returns_400_problem(client: httpx.AsyncClient) -> None:
    book = (await client.post(BOOKS, json=book_payload())).json()
    path = f"{BOOKS}/{book['id']}"

    response = await client.patch(path, content=b'{"title": "x"', headers=JSON)

    assert_problem(response, 400, "malformed-json", instance=path)


@pytest.mark.parametrize("body", [b"[]", b'"a string"', b"null", b"42"])
async def test_json_that_is_not_an_object_returns_422(
    client: httpx.AsyncClient, body: bytes
) -> None:
    problem = assert_problem(
        await client.post(BOOKS, content=body, headers=JSON), 422, "validation-error"
    )
    assert problem["errors"][0]["loc"][0] == "body"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
async def test_body_with_non_json_content_type_returns_415(
    client: httpx.AsyncClient, engine: AsyncEngine, content_type: str
) -> None:
    response = await client.post(
        BOOKS, content=json_bytes(), headers={"Content-Type": content_type}
    )

    problem = assert_problem(response, 415, "unsupported-media-type")
    assert content_type in problem["detail"]
    assert await count_rows(engine, books) == 0


async def test_body_without_content_type_returns_415(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    request = client.build_request("POST", BOOKS, content=json_bytes())
    assert "content-type" not in request.headers

    response = await client.send(request)

    assert_problem(response, 415, "unsupported-media-type")
    assert await count_rows(engine, books) == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.x+json"],
)
async def test_json_media_type_variants_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await client.post(
        BOOKS, content=json_bytes(), headers={"Content-Type": content_type}
    )

    assert response.status_code == 201, response.text


# --- body size -------------------------------------------------------------------------------


async def test_body_over_1_mib_with_content_length_returns_413(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post(BOOKS, content=json_bytes(MIB + 1), headers=JSON)

    assert_problem(response, 413, "about:blank")
    assert response.json()["title"] == "Content Too Large"
    assert await count_rows(engine, books) == 0


async def test_body_of_exactly_1_mib_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(BOOKS, content=json_bytes(MIB), headers=JSON)

    assert response.status_code == 201, response.text


async def test_chunked_body_over_1_mib_returns_413(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post(BOOKS, content=stream(json_bytes(MIB + 1)), headers=JSON)

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "about:blank")
    assert await count_rows(engine, books) == 0


async def test_chunked_body_under_the_cap_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(BOOKS, content=stream(json_bytes(), chunk=7), headers=JSON)

    assert response.status_code == 201, response.text


async def test_patch_body_over_the_cap_returns_413(client: httpx.AsyncClient) -> None:
    book = (await client.post(BOOKS, json=book_payload())).json()
    path = f"{BOOKS}/{book['id']}"

    response = await client.patch(path, content=b" " * (MIB + 1), headers=JSON)

    assert_problem(response, 413, "about:blank", instance=path)


@pytest.mark.parametrize("chunked", [False, True])
async def test_custom_body_cap_is_honoured(database_url: str, chunked: bool) -> None:
    async with client_for(database_url, max_body_bytes=2048) as http:

        def body(size: int) -> Any:
            return stream(json_bytes(size), chunk=500) if chunked else json_bytes(size)

        too_large = await http.post(BOOKS, content=body(2049), headers=JSON)
        at_cap = await http.post(BOOKS, content=body(2048), headers=JSON)

    assert_problem(too_large, 413, "about:blank")
    assert "2048" in too_large.json()["detail"]
    assert at_cap.status_code == 201, at_cap.text


# --- routing errors --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v2/books", "/api/v1/books/a/b"])
async def test_unknown_route_returns_404_problem(client: httpx.AsyncClient, path: str) -> None:
    problem = assert_problem(await client.get(path), 404, "about:blank", instance=path)
    assert problem["title"] == "Not Found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", BOOKS, "GET, HEAD, POST"),
        ("DELETE", BOOKS, "GET, HEAD, POST"),
        ("PUT", f"{BOOKS}/0b6f3d1e-4a52-4c8e-9f10-2d7a5c9e8b41", "GET, HEAD, PATCH, DELETE"),
        ("POST", f"{BOOKS}/0b6f3d1e-4a52-4c8e-9f10-2d7a5c9e8b41", "GET, HEAD, PATCH, DELETE"),
    ],
)
async def test_wrong_method_returns_405_problem_with_allow(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path, json={})

    problem = assert_problem(response, 405, "about:blank", instance=path)
    assert problem["title"] == "Method Not Allowed"
    assert response.headers["allow"] == allow


# --- validation errors -----------------------------------------------------------------------


async def test_validation_error_lists_each_bad_field(client: httpx.AsyncClient) -> None:
    payload = book_payload(title="", page_count="many", extra="x")

    response = await client.post(BOOKS, json=payload)

    problem = assert_problem(response, 422, "validation-error")
    errors = problem["errors"]
    assert sorted(error["loc"] for error in errors) == [
        ["body", "extra"],
        ["body", "page_count"],
        ["body", "title"],
    ]
    for error in errors:
        assert set(error) == {"loc", "msg", "type"}
        assert isinstance(error["msg"], str)
        assert error["msg"]
        assert isinstance(error["type"], str)
    assert {error["type"] for error in errors} == {
        "extra_forbidden",
        "int_type",
        "string_too_short",
    }


# --- unexpected errors -----------------------------------------------------------------------


def add_failing_route(app: FastAPI) -> None:
    async def fail() -> None:
        raise RuntimeError("secret SQL select * from books")

    app.add_api_route("/api/v1/boom", fail, methods=["GET"])


async def test_unexpected_error_returns_500_problem_without_details(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bookshelf.errors"):
        async with client_for(database_url, configure=add_failing_route) as http:
            response = await http.get("/api/v1/boom")

    problem = assert_problem(response, 500, "internal-error", instance="/api/v1/boom")
    assert problem["title"] == "Internal server error"
    text = response.text.lower()
    for leak in ("secret", "select", "traceback", "runtimeerror"):
        assert leak not in text
    logged = [record for record in caplog.records if record.name == "bookshelf.errors"]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert isinstance(logged[0].exc_info[1], RuntimeError)
