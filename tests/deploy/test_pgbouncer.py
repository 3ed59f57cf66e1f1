"""The shipped PgBouncer configuration (deploy/k8s/pgbouncer.ini) with the app behind it, set as
the ConfigMap sets it: Debian's pgbouncer runs the file with only its addresses and
authentication moved to the test's (the shared PostgreSQL's trusted ``postgres`` role), the
migrations go straight to PostgreSQL as the Job's do, and concurrent writes and reads, the
outbox included, go through PgBouncer's transaction pool."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import io
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from bookshelf.db import migrate as migrations
from bookshelf.mail.models import mail_outbox
from bookshelf.users.schemas import Role
from tests.conftest import make_settings, throwaway_postgres_database
from tests.deploy.kustomize import render
from tests.deploy.manifests import K8S, unavailable
from tests.deploy.test_container import started as started_process
from tests.deploy.test_overlays import named
from tests.factories import BOOKS, app_account, book_payload, count_rows, register
from tests.faults.conftest import service_directory
from tests.ops.support import http, started
from tests.servers import free_port

SHIPPED = K8S / "pgbouncer.ini"


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )
    if found is None:
        unavailable("pgbouncer is not installed: apt-get install pgbouncer")
        raise AssertionError("unreachable")
    return found


def shipped_configuration() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read_string(SHIPPED.read_text())
    return parser


def database_alias() -> str:
    """The database name clients ask PgBouncer for (the Secret's URLs name it too)."""
    [(alias, _target)] = shipped_configuration()["databases"].items()
    return alias


def moved_configuration(database_url: str, directory: Path, port: int) -> str:
    """The shipped file with the database, listener and authentication moved to the test's;
    everything else (pool mode, sizes, startup parameters, TLS) as shipped."""
    url = make_url(database_url)
    parser = shipped_configuration()
    parser["databases"][database_alias()] = (
        f"host={url.host} port={url.port or 5432} dbname={url.database} user={url.username}"
    )
    parser["pgbouncer"].update(
        {
            "listen_addr": "127.0.0.1",
            "listen_port": str(port),
            "auth_type": "trust",
            "auth_file": str(directory / "userlist.txt"),
        }
    )
    (directory / "userlist.txt").write_text(f'"{url.username}" ""\n')
    text = io.StringIO()
    parser.write(text)
    return text.getvalue()


@contextlib.contextmanager
def running(binary: str, configuration: str, directory: Path, port: int) -> Iterator[None]:
    path = directory / "pgbouncer.ini"
    path.write_text(configuration)
    log = directory / "pgbouncer.log"
    # PgBouncer refuses to run as root: as the service user, like the fault tests' PgBouncer.
    as_service_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        for item in directory.iterdir():
            shutil.chown(item, user="postgres", group="postgres")
        as_service_user = {"user": "postgres", "group": "postgres", "extra_groups": []}
    with started_process([binary, str(path)], None, log, **as_service_user) as process:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with throwaway_postgres_database("bookshelf_pgbouncer") as url:
        yield url


async def test_the_app_works_through_the_shipped_pgbouncer(database_url: str) -> None:
    binary = pgbouncer_binary()
    directory = service_directory("bookshelf-deploy-pgbouncer-")
    port = free_port()
    config = named(render(K8S), "ConfigMap", "bookshelf")["data"]
    through = make_url(database_url).set(host="127.0.0.1", port=port, database=database_alias())
    assert database_alias() == "bookshelf"
    settings = make_settings(
        through.render_as_string(hide_password=False),
        database_statement_cache=config["BOOKSHELF_DATABASE_STATEMENT_CACHE"] == "true",
        database_pool_size=int(config["BOOKSHELF_DATABASE_POOL_SIZE"]),
        database_max_overflow=int(config["BOOKSHELF_DATABASE_MAX_OVERFLOW"]),
    )
    assert settings.database_statement_cache is False
    try:
        await migrations.upgrade_database(make_settings(database_url))
        with running(binary, moved_configuration(database_url, directory, port), directory, port):
            async with started(settings) as app, http(app) as client:
                assert (await client.get("/health/ready")).status_code == 200
                editor = (await app_account(app, Role.EDITOR)).headers
                # More requests at once than one server connection: transactions interleave
                # on PgBouncer's pool, with no prepared statement left behind to collide.
                created = await asyncio.gather(
                    *(client.post(BOOKS, json=book_payload(), headers=editor) for _ in range(12))
                )
                assert [r.status_code for r in created] == [201] * 12, created[0].text
                registered = await asyncio.gather(*(register(client) for _ in range(4)))
                assert [r.status_code for r in registered] == [202] * 4
                listed = await client.get(BOOKS, params={"limit": 50})
                assert listed.status_code == 200
                assert len(listed.json()["items"]) == 12
                assert await count_rows(app.state.database, mail_outbox) == 4
    finally:
        shutil.rmtree(directory, ignore_errors=True)
