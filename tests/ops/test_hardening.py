"""HTTP hardening: security headers, HSTS and the HTTPS redirect, CORS, trusted hosts, the
request time limit, and PostgreSQL's statement timeout and statement cache settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import text
from typer.testing import CliRunner

from bookshelf.cli import app as cli
from bookshelf.config import Settings
from bookshelf.db.connections import ConnectionDep
from bookshelf.db.database import unit_of_work
from bookshelf.users.schemas import Role
from tests.conftest import empty_tables, make_settings
from tests.factories import app_account, assert_problem, book_payload
from tests.ops.support import http, started

API = "/api/v1"
BOOKS = f"{API}/books"
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=63072000; includeSubDomains"
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": API_CSP,
}


def security_headers(response: httpx.Response) -> dict[str, str | None]:
    return {name: response.headers.get(name) for name in SECURITY_HEADERS}


async def test_api_responses_carry_the_security_headers(
    anonymous_client: httpx.AsyncClient,
) -> None:
    responses = [
        await anonymous_client.get(BOOKS),
        await anonymous_client.get(f"{BOOKS}/nope"),
        await anonymous_client.post(BOOKS, json=book_payload()),
        await anonymous_client.get("/health/ready"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 401, 200]
    for response in responses:
        assert security_headers(response) == SECURITY_HEADERS
        assert "strict-transport-security" not in response.headers  # plain http


async def test_unexpected_errors_carry_the_security_headers(settings: Settings) -> None:
    async def explode() -> None:
        raise RuntimeError("boom")

    async with started(settings.model_copy(update={"json_logs": True})) as app:
        app.add_api_route(f"{API}/explode", explode)
        async with http(app) as client:
            response = await client.get(f"{API}/explode")
    assert response.status_code == 500
    assert security_headers(response) == SECURITY_HEADERS


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_docs_may_run_their_own_scripts(
    anonymous_client: httpx.AsyncClient, path: str
) -> None:
    response = await anonymous_client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert csp == DOCS_CSP
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hsts_only_over_https(settings: Settings) -> None:
    async with started(settings) as application:
        async with http(application, base_url="https://testserver") as secure:
            over_https = await secure.get(BOOKS)
        async with http(application) as plain:
            over_http = await plain.get(BOOKS)
    assert over_https.status_code == 200
    assert over_https.headers["strict-transport-security"] == HSTS
    assert "strict-transport-security" not in over_http.headers


async def test_https_redirect(settings: Settings) -> None:
    redirecting = settings.model_copy(update={"https_redirect": True, "trusted_proxies": ""})
    async with started(redirecting) as app:
        async with http(app) as plain:
            redirected = await plain.get(f"{BOOKS}?limit=5")
            forwarded = await plain.get(BOOKS, headers={"X-Forwarded-Proto": "https"})
        async with http(app, base_url="https://testserver") as secure:
            served = await secure.get(BOOKS)
    assert redirected.status_code == 307
    assert redirected.headers["location"] == f"https://testserver{BOOKS}?limit=5"
    assert forwarded.status_code == 307  # no trusted proxy: the header is not believed
    assert served.status_code == 200
    assert served.headers["strict-transport-security"] == HSTS


async def test_https_redirect_believes_a_trusted_proxy(settings: Settings) -> None:
    behind_proxy = settings.model_copy(
        update={"https_redirect": True, "trusted_proxies": "127.0.0.1"}
    )
    async with started(behind_proxy) as app, http(app) as client:
        response = await client.get(BOOKS, headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == HSTS


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_cors_allows_only_the_listed_origins(settings: Settings) -> None:
    cors = settings.model_copy(update={"cors_origins": "https://app.example"})
    async with started(cors) as app, http(app) as client:
        allowed = await client.options(BOOKS, headers=preflight("https://app.example"))
        refused = await client.options(BOOKS, headers=preflight("https://evil.example"))
        simple = await client.get(BOOKS, headers={"Origin": "https://app.example"})
        foreign = await client.get(BOOKS, headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in allowed.headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    exposed = {
        h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "x-request-id", "retry-after", "ratelimit-remaining"} <= exposed
    assert foreign.status_code == 200
    assert "access-control-allow-origin" not in foreign.headers


async def test_cors_with_credentials_names_the_origin(settings: Settings) -> None:
    cors = settings.model_copy(
        update={
            "cors_origins": "https://a.example, https://b.example",
            "cors_allow_credentials": True,
        }
    )
    async with started(cors) as app, http(app) as client:
        response = await client.options(BOOKS, headers=preflight("https://b.example"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://b.example"
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_no_cors_unless_configured(anonymous_client: httpx.AsyncClient) -> None:
    response = await anonymous_client.options(BOOKS, headers=preflight("https://app.example"))
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.usefixtures("clean_environment")
def test_wildcard_origins_with_credentials_are_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(cors_origins="*", cors_allow_credentials=True)
    assert "BOOKSHELF_CORS_ORIGINS" in str(raised.value)
    assert "BOOKSHELF_CORS_ALLOW_CREDENTIALS" in str(raised.value)
    assert Settings(cors_origins="*").cors_origin_list == ["*"]


@pytest.mark.usefixtures("clean_environment")
def test_cli_refuses_wildcard_origins_with_credentials(tmp_path: Path) -> None:
    database = tmp_path / "never-created.db"
    env = {
        "BOOKSHELF_CORS_ORIGINS": "*",
        "BOOKSHELF_CORS_ALLOW_CREDENTIALS": "true",
        "BOOKSHELF_DATABASE_URL": f"sqlite:///{database}",
    }
    result = CliRunner().invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bookshelf: invalid configuration")
    assert "BOOKSHELF_CORS_ORIGINS" in lines[0]
    assert "BOOKSHELF_CORS_ALLOW_CREDENTIALS" in lines[0]
    assert "Traceback" not in result.output
    assert not database.exists()


async def test_unknown_hosts_are_refused(settings: Settings) -> None:
    hosts = settings.model_copy(update={"allowed_hosts": "books.example, *.books.example"})
    async with started(hosts) as app, http(app, base_url="http://books.example") as client:
        ours = await client.get(BOOKS)
        subdomain = await client.get(BOOKS, headers={"Host": "api.books.example"})
        evil = await client.get(BOOKS, headers={"Host": "evil.example"})
        probe = await client.get("/health/live", headers={"Host": "10.1.2.3:8000"})
    assert ours.status_code == 200
    assert subdomain.status_code == 200
    assert evil.status_code == 400
    assert "books" not in evil.text
    # Orchestrators probe a pod by its IP address: health stays reachable whatever the Host.
    assert probe.status_code == 200


async def test_slow_requests_are_abandoned_with_503(settings: Settings) -> None:
    async def slow() -> dict[str, str]:
        await asyncio.sleep(2)
        return {"status": "finished"}

    timed = settings.model_copy(update={"request_timeout_seconds": 0.2, "json_logs": True})
    async with started(timed) as app:
        app.add_api_route(f"{API}/slow", slow)
        async with http(app) as client:
            started_at = time.monotonic()
            response = await client.get(f"{API}/slow")
            elapsed = time.monotonic() - started_at
            fast = await client.get(BOOKS)
    problem = assert_problem(response, 503, "timeout", instance=f"{API}/slow")
    assert "0.2 s" in problem["detail"]
    assert response.headers["retry-after"] == "1"
    assert elapsed < 1.0
    assert fast.status_code == 200


# --- PostgreSQL only ---------------------------------------------------------------------------


@pytest.mark.postgres_only
async def test_statement_timeout_is_a_503_not_a_500(pg_url: str) -> None:
    async def sleepy(connection: ConnectionDep) -> dict[str, str]:
        await connection.execute(text("SELECT pg_sleep(1)"))
        return {"status": "slept"}

    settings = make_settings(pg_url, database_statement_timeout_ms=100, json_logs=True)
    async with started(settings) as app:
        app.add_api_route(f"{API}/sleepy", sleepy)
        async with unit_of_work(app.state.database, write=False) as connection:
            timeout = await connection.scalar(text("SHOW statement_timeout"))
        async with http(app) as client:
            started_at = time.monotonic()
            response = await client.get(f"{API}/sleepy")
            elapsed = time.monotonic() - started_at
            after = await client.get(BOOKS)
    assert timeout == "100ms"
    assert elapsed < 0.9
    assert_problem(response, 503, "database-unavailable", instance=f"{API}/sleepy")
    assert response.headers["retry-after"] == "5"
    assert "pg_sleep" not in response.text
    assert after.status_code == 200  # the connection went back to the pool usable


async def _prepared_on_server(settings: Settings) -> int:
    """Create, list and get a book on one pooled connection; count its server-side prepared
    statements afterwards (the counting query itself is one)."""
    async with started(settings) as app, http(app) as client:
        editor = (await app_account(app, Role.EDITOR)).headers
        created = await client.post(BOOKS, json=book_payload(), headers=editor)
        assert created.status_code == 201, created.text
        for _ in range(3):
            listed = await client.get(BOOKS)
            assert listed.status_code == 200
            assert [book["id"] for book in listed.json()["items"]] == [created.json()["id"]]
            got = await client.get(f"{BOOKS}/{created.json()['id']}")
            assert got.status_code == 200
            assert got.json()["title"] == created.json()["title"]
        async with unit_of_work(app.state.database, write=False) as connection:
            count = await connection.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
    assert isinstance(count, int)
    return count


@pytest.mark.postgres_only
async def test_statement_cache_off_works_and_leaves_no_prepared_statements(pg_url: str) -> None:
    one_connection = {"database_pool_size": 1, "database_max_overflow": 0}
    cached = await _prepared_on_server(make_settings(pg_url, **one_connection))
    await empty_tables(pg_url)
    uncached = make_settings(pg_url, database_statement_cache=False, **one_connection)
    # Nothing stays prepared on the server (asyncpg prepares unnamed statements).
    assert await _prepared_on_server(uncached) == 0
    assert cached > 1  # the check above can tell the difference


async def test_a_started_stream_has_its_own_time_limit(settings: Settings) -> None:
    """The request time limit covers the time until the answer starts; a streamed body then
    has the stream limit (the bulk export), and is cut past it."""

    async def chunks(pause: float) -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"line\n"
            await asyncio.sleep(pause)

    async def streamed(pause: float) -> StreamingResponse:
        return StreamingResponse(chunks(pause), media_type="application/x-ndjson")

    timed = settings.model_copy(
        update={"request_timeout_seconds": 0.2, "stream_timeout_seconds": 1.0}
    )
    async with started(timed) as app:
        app.add_api_route(f"{API}/streamed", streamed)
        async with http(app) as client:
            # 0.45 s in all: past the request limit, within the stream's.
            finished = await client.get(f"{API}/streamed", params={"pause": 0.15})
            started_at = time.monotonic()
            cut = await client.get(f"{API}/streamed", params={"pause": 1.5})  # 4.5 s in all
            elapsed = time.monotonic() - started_at
    assert finished.status_code == 200
    assert finished.content == b"line\n" * 3
    # Cut at the stream's limit: the first line went out, the rest never did.
    assert cut.content == b"line\n"
    assert elapsed < 2.0
