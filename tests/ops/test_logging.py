"""Logs: one access event per request, the standard library's loggers through the same JSON
handler, readable lines in development, and no secret in any line."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from fastapi import FastAPI, Request
from sqlalchemy import select, text

from bookshelf.config import Environment, Settings, get_settings
from bookshelf.db.connections import ConnectionDep
from bookshelf.db.database import unit_of_work
from bookshelf.main import create_app, create_app_for_process
from bookshelf.ops.logging import MAIL_LOG, MASK, redact_secrets
from bookshelf.users.models import users
from bookshelf.users.schemas import Role
from tests.conftest import _asyncpg_dsn, make_settings
from tests.factories import app_account, book_payload
from tests.ops.support import http, logging_as_served, started
from tests.servers import running_server


def json_events(text_: str) -> list[dict[str, Any]]:
    """Every line must be one JSON object."""
    return [json.loads(line) for line in text_.splitlines() if line.strip()]


def access_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("logger") == "bookshelf.access"]


async def test_every_request_logs_one_access_event(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"json_logs": True})
    with logging_as_served(settings):
        async with started(settings) as app:
            account = await app_account(app, Role.EDITOR)
            editor_id, editor = account.id, account.headers
            async with http(app) as client:
                created = await client.post("/api/v1/books", json=book_payload(), headers=editor)
                book = f"/api/v1/books/{created.json()['id']}"
                # (path, headers, route template, status, user_id)
                cases = [
                    ("/api/v1/books", {}, "/api/v1/books", 200, None),
                    (book, {}, "/api/v1/books/{book_id}", 200, None),
                    (f"/api/v1/books/{uuid.uuid4()}", {}, "/api/v1/books/{book_id}", 404, None),
                    ("/api/v1/users/me", editor, "/api/v1/users/me", 200, str(editor_id)),
                    ("/api/v1/users/me", {}, "/api/v1/users/me", 401, None),
                    ("/no/such/page", {}, "<unmatched>", 404, None),
                    ("/api/v1/no-such-resource/42", {}, "<unmatched>", 404, None),
                ]
                sent = [(created, "POST", "/api/v1/books", 201, str(editor_id))]
                for number, (path, headers, route, status, user_id) in enumerate(cases):
                    headers = {**headers, "X-Request-ID": f"ops-access-{number:04d}"}
                    response = await client.get(path, headers=headers)
                    sent.append((response, "GET", route, status, user_id))
    access = access_events(json_events(capsys.readouterr().err))
    assert len(access) == len(sent)
    for response, method, route, status, user_id in sent:
        assert response.status_code == status, response.text
        request_id = response.headers["x-request-id"]
        [event] = [e for e in access if e["request_id"] == request_id]
        assert event["event"] == "request"
        assert event["level"] == "info"
        assert (event["method"], event["route"], event["status"]) == (method, route, status)
        assert event["user_id"] == user_id
        assert isinstance(event["duration_ms"], float | int)
        assert 0 < event["duration_ms"] < 10_000
    # The sent ids were kept; the POST, which sent none, got a generated one.
    assert [e["request_id"] for e in access[1:]] == [f"ops-access-{n:04d}" for n in range(7)]
    assert len(access[0]["request_id"]) == 32


async def test_uvicorn_and_sql_logs_are_json_lines(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"json_logs": True, "database_echo": True})
    app = create_app(settings)
    # As ``bookshelf serve`` runs uvicorn (log_config=None: logging is configured before the app
    # is built, see ``logging_as_served``).
    with (
        logging_as_served(settings),
        running_server(app, log_config=None, log_level="info") as (base_url),
    ):
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.get("/api/v1/books", headers={"X-Request-ID": "ops-sql-0001"})
    assert response.status_code == 200
    captured = capsys.readouterr()
    events = json_events(captured.err)
    uvicorn_messages = [e["event"] for e in events if e["logger"] == "uvicorn.error"]
    assert "Application startup complete." in uvicorn_messages
    assert "Application shutdown complete." in uvicorn_messages
    assert not [e for e in events if e["logger"] == "uvicorn.access"]
    sql = [e for e in events if e["logger"] == "bookshelf.db"]
    in_request = [e for e in sql if e.get("request_id") == "ops-sql-0001"]
    assert any("FROM books" in e["event"] for e in in_request), in_request
    assert {e["level"] for e in sql} == {"info"}
    assert len(access_events(events)) == 1
    # One handler for everything: nothing printed around it, by the SQL echo or anyone.
    assert captured.out == ""


async def test_no_secret_reaches_a_log_line(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    jwt_secret = f"ops-jwt-secret-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    settings = make_settings(
        database_url, json_logs=True, database_echo=True, jwt_secret=jwt_secret
    )
    email = f"secret-{uuid.uuid4().hex[:8]}@example.org"
    first, second = (f"a long secret passphrase {uuid.uuid4().hex}" for _ in range(2))
    app = create_app(settings)

    async def explode(request: Request, connection: ConnectionDep) -> None:
        # An error whose message carries the token and the stored hash (as SQL parameters).
        stored = await connection.scalar(select(users.c.password_hash).limit(1))
        token = request.headers["authorization"]
        await connection.execute(
            text("SELECT :t, :h FROM no_such_table"), {"t": token, "h": stored}
        )

    app.add_api_route("/explode", explode)
    secrets = [jwt_secret, first, second]
    with logging_as_served(settings):
        async with app.router.lifespan_context(app), http(app) as client:
            registered = await client.post(
                "/api/v1/auth/register", json={"email": email, "password": first}
            )
            assert registered.status_code == 202, registered.text
            form = {"username": email, "password": first, "grant_type": "password"}
            signed = (await client.post("/api/v1/auth/token", data=form)).json()
            refreshed = await client.post(
                "/api/v1/auth/refresh", json={"refresh_token": signed["refresh_token"]}
            )
            assert refreshed.status_code == 200, refreshed.text
            bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
            assert (await client.get("/api/v1/users/me", headers=bearer)).status_code == 200
            old_hash = await _stored_hash(app, email)
            change = {"current_password": first, "password": second}
            changed = await client.patch("/api/v1/users/me", json=change, headers=bearer)
            assert changed.status_code == 200, changed.text
            wrong = {**form, "password": second + "-wrong"}
            assert (await client.post("/api/v1/auth/token", data=wrong)).status_code == 400
            again = (
                await client.post("/api/v1/auth/token", data={**form, "password": second})
            ).json()
            # 500, or 503 on SQLite, where a missing table is an OperationalError.
            assert (await client.get("/explode", headers=bearer)).status_code in {500, 503}
            secrets += [old_hash, await _stored_hash(app, email)]
            secrets += [signed["access_token"], signed["refresh_token"], again["access_token"]]
            secrets += [refreshed.json()["access_token"], refreshed.json()["refresh_token"]]
    captured = capsys.readouterr()
    events = json_events(captured.err)
    assert any(e["logger"] == "bookshelf.errors" and "exception" in e for e in events)
    assert any(e["logger"] == "bookshelf.db" for e in events)
    leaked = {
        stream: [s[:24] for s in secrets if s in output]
        for stream, output in (("stderr", captured.err), ("stdout", captured.out))
    }
    assert leaked == {"stderr": [], "stdout": []}
    assert "$argon2id$" not in captured.err + captured.out


async def _stored_hash(app: FastAPI, email: str) -> str:
    async with unit_of_work(app.state.database, write=False) as connection:
        value = await connection.scalar(select(users.c.password_hash).where(users.c.email == email))
    assert isinstance(value, str)
    assert value.startswith("$argon2id$")
    return value


@pytest.mark.postgres_only
@pytest.mark.parametrize("json_logs", [True, False], ids=["json", "console"])
async def test_database_error_during_password_change_logs_no_secret(
    pg_url: str, capsys: pytest.CaptureFixture[str], json_logs: bool
) -> None:
    """A realistic failure in a frame that holds passwords: the UPDATE waits on a row lock
    until the statement timeout cancels it, and the error is logged with its traceback."""
    settings = make_settings(pg_url, json_logs=json_logs, database_statement_timeout_ms=300)
    old, new = (f"a long secret passphrase {uuid.uuid4().hex}" for _ in range(2))
    with logging_as_served(settings):
        async with started(settings) as app, http(app) as client:
            email = f"locked-{uuid.uuid4().hex[:8]}@example.org"
            await client.post("/api/v1/auth/register", json={"email": email, "password": old})
            form = {"username": email, "password": old, "grant_type": "password"}
            token = (await client.post("/api/v1/auth/token", data=form)).json()["access_token"]
            stored = await _stored_hash(app, email)
            blocker = await asyncpg.connect(_asyncpg_dsn(pg_url))
            try:
                async with blocker.transaction():
                    await blocker.execute("SELECT 1 FROM users WHERE email = $1 FOR UPDATE", email)
                    response = await client.patch(
                        "/api/v1/users/me",
                        json={"current_password": old, "password": new},
                        headers={"Authorization": f"Bearer {token}"},
                    )
            finally:
                await blocker.close()
    assert response.status_code in {500, 503}, response.text
    output = capsys.readouterr()
    logged = output.err + output.out
    assert "statement timeout" in logged
    # Console tracebacks wrap long values across lines: look for short fragments of each.
    markers = {
        "current password": old.split()[-1][:12],
        "new password": new.split()[-1][:12],
        "password hash": "$argon2id$",
        "hash digest": stored.rsplit("$", 1)[1][:12],
        "token signature": token.rsplit(".", 1)[1][:12],
    }
    assert [name for name, marker in markers.items() if marker in logged] == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"password": "hunter2-hunter2"}, {"password": MASK}),
        ({"current_password": "x", "new_pass": "y"}, {"current_password": MASK, "new_pass": MASK}),
        ({"refresh_token": "abc", "jwt_secret": "s"}, {"refresh_token": MASK, "jwt_secret": MASK}),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": MASK}),
        ({"cookie": "session=1", "api_key": "k", "X-Api-Key": "k"}, None),
        (
            {"headers": {"authorization": "Bearer abc.def.ghi", "accept": "*/*"}},
            {"headers": {"authorization": MASK, "accept": "*/*"}},
        ),
        ({"event": "sent Bearer abcdef.ghijkl.mnop to x"}, {"event": f"sent {MASK} to x"}),
        (
            {"event": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here"},
            {"event": f"token {MASK} here"},
        ),
        (
            {"event": "params ('$argon2id$v=19$m=8192,t=1,p=4$c2FsdA$aGFzaA', 'x')"},
            {"event": f"params ('{MASK}', 'x')"},
        ),
        (
            {"args": ["Bearer tok.en.value", {"password": "p"}, ("ok", 1)]},
            {"args": [MASK, {"password": MASK}, ["ok", 1]]},
        ),
        (
            {"event": "request", "authors": ["Le Guin"], "route": "/api/v1/books", "status": 200},
            {"event": "request", "authors": ["Le Guin"], "route": "/api/v1/books", "status": 200},
        ),
        (
            {"event": "open https://b.example/verify-email?token=Zx9-_a1&next=/ now"},
            {"event": f"open https://b.example/verify-email?token={MASK}&next=/ now"},
        ),
        (
            {"event": "mail", "body": "Link:\n\nhttps://b.example/reset-password?TOKEN=q1w2e3\n"},
            {"event": "mail", "body": f"Link:\n\nhttps://b.example/reset-password?TOKEN={MASK}\n"},
        ),
        (
            {"args": ["?access_token=abc", ("'token=def'",)], "error": ValueError("token=ghi")},
            {"args": [f"?access_token={MASK}", [f"'token={MASK}'"]], "error": f"token={MASK}"},
        ),
    ],
)
def test_redact_secrets(event: dict[str, Any], expected: dict[str, Any] | None) -> None:
    result = redact_secrets(None, "info", dict(event))
    assert result == (expected if expected is not None else dict.fromkeys(event, MASK))


@pytest.mark.parametrize("json_logs", [True, False], ids=["json", "console"])
def test_a_token_parameter_is_masked_in_every_part_of_a_line(
    settings: Settings, capsys: pytest.CaptureFixture[str], json_logs: bool
) -> None:
    """Message, its arguments, the exception's text, structured fields: wherever a link's
    ``token=`` appears, its value is masked."""
    with logging_as_served(settings.model_copy(update={"json_logs": json_logs})):
        stdlib = logging.getLogger("bookshelf.ops-test")
        stdlib.warning("link https://b.example/verify-email?token=in-message-1")
        try:
            raise RuntimeError("cannot open https://b.example/reset-password?token=in-error-2")
        except RuntimeError:
            stdlib.exception("while sending %s", "https://b.example/?token=in-argument-3")
        structlog.get_logger("bookshelf.ops-test").warning(
            "mail", link="https://b.example/?token=in-field-4", error=OSError("token=in-field-5")
        )
    logged = capsys.readouterr().err
    assert "cannot open https://b.example/reset-password?token=" in logged  # the traceback
    markers = ["in-message-1", "in-error-2", "in-argument-3", "in-field-4", "in-field-5"]
    assert [marker for marker in markers if marker in logged] == []
    assert logged.count(f"token={MASK}") >= 5  # the traceback shows the raising line too


def test_only_the_mail_log_of_a_development_process_shows_links(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's tour (no mail server): in development the log mail transport's lines
    keep their links; no other logger's, and nowhere else."""
    development = settings.model_copy(update={"environment": Environment.DEVELOPMENT})
    for environment in (
        development,
        settings,
        settings.model_copy(update={"environment": Environment.PRODUCTION}),
    ):
        with logging_as_served(environment.model_copy(update={"json_logs": True})):
            number = environment.environment.value
            logging.getLogger(MAIL_LOG).warning("mail https://b.example/?token=mail-%s", number)
            logging.getLogger("bookshelf.mail").warning("https://b.example/?token=other-%s", number)
    logged = capsys.readouterr().err
    shown = [
        f"{kind}-{name}"
        for kind in ("mail", "other")
        for name in ("development", "test", "production")
        if f"{kind}-{name}" in logged
    ]
    assert shown == ["mail-development"]


async def test_console_lines_are_readable_not_json(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"json_logs": False})
    with logging_as_served(settings):
        async with started(settings) as app, http(app) as client:
            response = await client.get("/api/v1/books", headers={"X-Request-ID": "ops-console-1"})
    assert response.status_code == 200
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    [access] = [line for line in lines if "bookshelf.access" in line]
    for fragment in ("request", "method=GET", "route=/api/v1/books", "status=200"):
        assert fragment in access
    assert "request_id=ops-console-1" in access
    assert "\x1b[" not in access  # no colour codes in a log file
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_building_an_app_leaves_the_process_logging_alone(settings: Settings) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("uvicorn.access").disabled)
    create_app(settings.model_copy(update={"json_logs": True, "log_level": "DEBUG"}))
    after = (list(root.handlers), root.level, logging.getLogger("uvicorn.access").disabled)
    assert after == before


@pytest.mark.usefixtures("clean_environment")
def test_the_served_factory_configures_the_process_logging_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bookshelf serve`` builds each worker's app with ``create_app_for_process``."""
    monkeypatch.setenv("BOOKSHELF_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("BOOKSHELF_ENVIRONMENT", "test")
    monkeypatch.setenv("BOOKSHELF_JSON_LOGS", "true")
    get_settings.cache_clear()
    # Configured as plain lines first (and put back afterwards): the factory must switch the
    # process to the settings it reads.
    with logging_as_served(settings.model_copy(update={"json_logs": False})):
        try:
            app = create_app_for_process()
        finally:
            get_settings.cache_clear()
        logging.getLogger("bookshelf").warning("configured")
    assert app.state.settings.use_json_logs
    [event] = json_events(capsys.readouterr().err)
    assert (event["logger"], event["event"], event["level"]) == (
        "bookshelf",
        "configured",
        "warning",
    )


def test_uvicorn_has_no_access_logger_to_format_lines_for(settings: Settings) -> None:
    """uvicorn formats a line per response (its path quoted) whenever ``uvicorn.access`` has
    a handler, inherited ones included; the app writes its own access log instead."""
    with logging_as_served(settings.model_copy(update={"json_logs": True})):
        assert logging.getLogger().handlers  # the root logger has the app's handler...
        assert not logging.getLogger("uvicorn.access").hasHandlers()  # ...not inherited here
