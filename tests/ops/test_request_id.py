"""Request ids: accepted when well-formed, generated otherwise, echoed in headers, problems
and log lines."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI

from bookshelf.config import Settings
from bookshelf.main import create_app
from tests.ops.support import logging_as_served


async def test_well_formed_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/books", headers={"X-Request-ID": "lb-1234abcd"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "lb-1234abcd"


@pytest.mark.parametrize("sent", ["short", "has spaces in it", "x" * 129, "semi;colon;value"])
async def test_malformed_request_id_is_replaced(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/api/v1/books", headers={"X-Request-ID": sent})
    generated = response.headers["x-request-id"]
    assert generated != sent
    assert len(generated) == 32
    assert int(generated, 16) >= 0


async def test_each_request_gets_its_own_id(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/v1/books")
    second = await client.get("/api/v1/books")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_problem_body_carries_the_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/books/nope", headers={"X-Request-ID": "trace-00000001"})
    assert response.status_code == 404
    assert response.json()["request_id"] == "trace-00000001"


async def test_unexpected_error_is_logged_with_the_request_id(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"json_logs": True})
    app: FastAPI = create_app(settings)

    async def explode() -> None:
        raise RuntimeError("boom: select secret from credentials")

    app.add_api_route("/api/v1/explode", explode)
    with logging_as_served(settings):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.get(
                    "/api/v1/explode", headers={"X-Request-ID": "trace-00000500"}
                )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-00000500"
    body = response.json()
    assert body["request_id"] == "trace-00000500"
    assert "select" not in response.text
    assert "Traceback" not in response.text
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    errors = [e for e in events if e.get("logger") == "bookshelf.errors"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "trace-00000500"
    assert errors[0]["level"] == "error"
    assert "RuntimeError" in errors[0]["exception"]
