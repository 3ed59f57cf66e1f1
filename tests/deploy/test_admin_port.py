"""BOOKSHELF_ADMIN_PORT: probes and metrics on a second listener of the same process(es), and
only there; the public port answers 404 for them, the admin port 404 for everything else."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from bookshelf.cli import app as cli
from bookshelf.problems import PROBLEM_MEDIA_TYPE
from tests.conftest import make_settings
from tests.ops.support import http, sample, started
from tests.servers import BookshelfServer, free_port

ADMIN_PORT = 9000
PUBLIC = "http://testserver"
ADMIN = f"http://testserver:{ADMIN_PORT}"
OPERATING_PATHS = ["/health/live", "/health/ready", "/metrics"]
PUBLIC_PATHS = ["/api/v1/books", "/docs", "/openapi.json"]


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[FastAPI]:
    async with started(make_settings(sqlite_url, admin_port=ADMIN_PORT)) as application:
        yield application


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["detail"] == f"Nothing is served at {response.url.path}."


@pytest.mark.parametrize("path", OPERATING_PATHS)
async def test_operating_endpoints_answer_on_the_admin_port_only(app: FastAPI, path: str) -> None:
    async with http(app, base_url=ADMIN) as admin, http(app, base_url=PUBLIC) as public:
        assert (await admin.get(path)).status_code == 200
        assert_not_found(await public.get(path))


@pytest.mark.parametrize("path", PUBLIC_PATHS)
async def test_the_api_and_docs_are_not_served_on_the_admin_port(app: FastAPI, path: str) -> None:
    async with http(app, base_url=ADMIN) as admin, http(app, base_url=PUBLIC) as public:
        assert (await public.get(path)).status_code == 200
        assert_not_found(await admin.get(path))


async def test_the_admin_port_skips_the_host_allow_list_and_https_redirect(
    sqlite_url: str,
) -> None:
    """Kubelets and Prometheus reach a pod by IP over plain HTTP."""
    settings = make_settings(
        sqlite_url,
        admin_port=ADMIN_PORT,
        allowed_hosts="api.example.org",
        https_redirect=True,
    )
    async with started(settings) as application:
        async with http(application, base_url=f"http://10.1.2.3:{ADMIN_PORT}") as admin:
            for path in OPERATING_PATHS:
                assert (await admin.get(path)).status_code == 200, path
        async with http(application, base_url="http://10.1.2.3") as public:
            assert (await public.get("/api/v1/books")).status_code == 400
        async with http(application, base_url="http://api.example.org") as public:
            redirect = await public.get("/api/v1/books")
            assert redirect.status_code == 307
            assert redirect.headers["location"].startswith("https://api.example.org")


def test_an_admin_port_equal_to_the_public_port_is_refused(
    clean_environment: None, tmp_path: Path
) -> None:
    env = {
        "BOOKSHELF_DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "BOOKSHELF_ADMIN_PORT": "8123",
    }
    result = CliRunner().invoke(cli, ["serve", "--port", "8123"], env=env)
    assert result.exit_code == 2
    assert result.stderr.strip() == "bookshelf: BOOKSHELF_ADMIN_PORT must differ from --port"
    assert not (tmp_path / "unused.db").exists()


def refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_two_workers_serve_probes_and_the_whole_groups_metrics_on_the_admin_port(
    tmp_path: Path,
) -> None:
    admin_port = free_port()
    server = BookshelfServer(
        f"sqlite:///{tmp_path / 'admin.db'}",
        tmp_path,
        workers=2,
        admin_port=str(admin_port),
    )
    try:
        server.wait_live()
        admin, public = server.admin_url, server.base_url
        # Both listeners are bound to the --host given (127.0.0.1), not to every interface.
        assert refuses_connections("127.0.0.2", server.port)
        assert refuses_connections("127.0.0.2", admin_port)
        assert httpx.get(f"{admin}/health/ready", timeout=5).json()["status"] == "ready"
        for path in OPERATING_PATHS:
            assert_not_found(httpx.get(f"{public}{path}", timeout=5))
        assert_not_found(httpx.get(f"{admin}/api/v1/books", timeout=5))
        # A new connection each time, so the kernel spreads them over both workers; whichever
        # worker answers the scrape reports every worker's requests.
        sent = 30
        for _ in range(sent):
            assert httpx.get(f"{public}/api/v1/books", timeout=10).status_code == 200
        exposition = httpx.get(f"{admin}/metrics", timeout=10).text
        counted = sample(
            exposition,
            "bookshelf_http_requests_total",
            method="GET",
            route="/api/v1/books",
            status_class="2xx",
        )
        assert counted == sent
    finally:
        server.stop()
