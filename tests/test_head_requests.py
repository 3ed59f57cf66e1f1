"""HEAD on every GET route: the same status and headers as GET, no body, and HEAD in every
``Allow``. Checked over every GET operation of the published schema (a new GET route is
covered, or this test names the path parameter it cannot fill), plus the routes outside it;
and over every GET route of the app on one kept-alive connection to a real uvicorn server."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bookshelf.main import create_app
from bookshelf.users.schemas import Role
from tests.conftest import Account, database_account, make_settings
from tests.factories import BOOKS, book_payload, create_book, post_review, reviews_path
from tests.ops.support import app_routes, logging_as_served
from tests.servers import KeptAliveConnection, running_server

# Outside the schema, but GET routes all the same.
UNLISTED = ["/health/live", "/health/ready", "/metrics", "/docs", "/redoc", "/openapi.json", "/"]
# Streamed answers: no Content-Length, on GET as on HEAD.
STREAMED = {f"{BOOKS}/export"}
# What the kept-alive connection sends to every GET route, in this order.
HEAD_HEAD_GET = ("HEAD", "HEAD", "GET")
# Headers that legitimately differ between two requests.
VOLATILE = {"date", "x-request-id", "ratelimit-remaining", "ratelimit-reset"}


def _fill(path: str, ids: dict[str, str]) -> str:
    names = re.findall(r"{(\w+)}", path)
    missing = [name for name in names if name not in ids]
    assert not missing, f"no value for {missing} in {path}: extend the ids in this test"
    return path.format(**ids)


def _comparable(response: httpx.Response, *, body_dependent: bool) -> dict[str, Any]:
    skip = VOLATILE | ({"content-length", "etag"} if body_dependent else set())
    return {name: value for name, value in response.headers.items() if name not in skip}


async def test_head_answers_like_get_on_every_get_route(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    book = await create_book(client)
    review = await post_review(client, book["id"], admin.headers)
    ids = {"book_id": book["id"], "review_id": review["id"], "user_id": str(admin.id)}
    schema = app.openapi()
    paths = [_fill(path, ids) for path, item in schema["paths"].items() if "get" in item]
    assert f"{BOOKS}/{book['id']}" in paths  # the schema really was read
    for path in [*paths, *UNLISTED]:
        got = await client.get(path)
        head = await client.head(path)
        # The metrics exposition changes with every request it counts.
        body_dependent = path == "/metrics"
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b"", path
        assert _comparable(head, body_dependent=body_dependent) == _comparable(
            got, body_dependent=body_dependent
        ), path
        if path in STREAMED:  # its length is not known when the headers are sent
            assert "content-length" not in got.headers
            assert "content-length" not in head.headers
        elif not body_dependent:
            assert head.headers["content-length"] == str(len(got.content)), path


async def test_head_keeps_conditional_and_error_answers(
    client: httpx.AsyncClient, anonymous_client: httpx.AsyncClient
) -> None:
    book = await create_book(client)
    path = f"{BOOKS}/{book['id']}"
    etag = (await client.get(path)).headers["etag"]

    not_modified = await client.head(path, headers={"If-None-Match": etag})
    missing = await client.head(f"{BOOKS}/0b6f3d1e-4a52-4c8e-9f10-2d7a5c9e8b41")
    signed_out = await anonymous_client.head("/api/v1/users/me")
    post_only = await client.head("/api/v1/auth/token")

    assert (not_modified.status_code, not_modified.headers["etag"]) == (304, etag)
    assert (missing.status_code, missing.content) == (404, b"")
    assert missing.headers["content-type"] == "application/problem+json"
    assert signed_out.status_code == 401
    assert "www-authenticate" in signed_out.headers
    assert (post_only.status_code, post_only.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize(
    ("path", "allow"),
    [(BOOKS, "GET, HEAD, POST"), ("/api/v1/users/me", "GET, HEAD, PATCH")],
)
async def test_allow_lists_head_beside_get(
    client: httpx.AsyncClient, path: str, allow: str
) -> None:
    response = await client.put(path, json={})
    assert response.status_code == 405
    assert response.headers["allow"] == allow


async def test_head_requests_are_logged_and_counted_under_their_route(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    book = await create_book(client)
    await client.head(f"{BOOKS}/{book['id']}")
    exposition = (await client.get("/metrics")).text
    assert (
        'bookshelf_http_requests_total{method="HEAD",route="/api/v1/books/{book_id}",'
        'status_class="2xx"}' in exposition
    )


def every_get_path(app: FastAPI, ids: dict[str, str]) -> list[str]:
    """A path for every GET route of ``app`` (its path parameters from ``ids``), and every file
    of its static mounts. A route of another kind fails here, to be covered too."""
    paths = []
    for route in app_routes(app):
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            paths += [
                f"{route.path}/{file.name}"
                for directory in route.app.all_directories
                for file in sorted(Path(directory).iterdir())
                if file.is_file()
            ]
        else:
            assert isinstance(route, Route), f"{route!r}: extend this test to cover it"
            if "GET" in (route.methods or ()):
                paths.append(_fill(route.path, ids))
    return paths


def _session_cookie(app: FastAPI, account: Account) -> str:
    """A web session cookie on ``account``'s signed-in session."""
    session_id = app.state.auth.signer.verify(account.access_token).session_id
    token = app.state.site.sessions.issue(account.id, session_id)
    return f"{app.state.site.cookies.session}={token}"


async def test_head_leaves_the_kept_alive_connection_open_on_every_get_route(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn sends a HEAD's headers, Content-Length included, and no body: the response ends
    there, nothing is logged as an error, and the connection serves the next request."""
    settings = make_settings(database_url, json_logs=True)
    admin = await database_account(database_url, Role.ADMIN)
    app = create_app(settings)
    with logging_as_served(settings), running_server(app, log_config=None) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=admin.headers) as client:
            book = (await client.post(BOOKS, json=book_payload())).json()
            review = (await client.post(reviews_path(book["id"]), json={"rating": 5})).json()
        ids = {
            "book_id": book["id"],
            "review_id": review["id"],
            "user_id": str(admin.id),
            "name": app.state.site.assets.names[0],  # a static file of the web app
        }
        paths = every_get_path(app, ids)
        # The web app's pages read the browser's session cookie, not the bearer token.
        headers = {**admin.headers, "Cookie": _session_cookie(app, admin)}
        answers = []
        with KeptAliveConnection(base_url) as connection:
            for path in paths:
                answers.append(
                    (path, [connection.request(m, path, headers) for m in HEAD_HEAD_GET])
                )
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

    assert f"{BOOKS}/{book['id']}" in paths  # the ids were filled in
    assert "/docs-assets/favicon.png" in paths  # the static mount was listed
    for path, [first, second, got] in answers:
        assert first[0] == second[0] == got[0] == 200, (path, first[0], second[0], got[0])
        assert first[2] == second[2] == b"", path
        if path not in STREAMED and path != "/metrics":
            assert first[1]["content-length"] == str(len(got[2])), path
    assert [e for e in events if e["level"] in {"error", "critical"}] == []
    heads = [e for e in events if e.get("logger") == "bookshelf.access" and e["method"] == "HEAD"]
    assert len(heads) == 2 * len(paths)
