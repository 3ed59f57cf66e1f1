"""``bookshelf migrate --status`` (where a database is, for people and scripts) and
``bookshelf --version``, on fresh databases of both kinds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from typer.testing import CliRunner, Result

import bookshelf as package
from bookshelf.cli import app as cli
from bookshelf.db import migrate
from bookshelf.db.engine import create_engine
from tests.conftest import make_settings, throwaway_postgres_database
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database that no other test uses."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'status.db'}"
        return
    async with throwaway_postgres_database("bookshelf_status") as url:
        yield url


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"BOOKSHELF_DATABASE_URL": url})


def status(url: str, *extra: str) -> Result:
    return run(url, "migrate", "--status", *extra)


def revisions_after(revision: str | None) -> list[str]:
    """The scripts' revisions after ``revision`` (None: all), oldest first, as Alembic's own
    script directory orders them."""
    directory = ScriptDirectory.from_config(migrate.alembic_config())
    oldest_first = [script.revision for script in reversed(list(directory.walk_revisions()))]
    return oldest_first[oldest_first.index(revision) + 1 :] if revision else oldest_first


async def _set_version(url: str, revision: str) -> None:
    engine = create_engine(make_settings(url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
            )
    finally:
        await engine.dispose()


def test_a_database_never_migrated_is_behind_by_every_migration(fresh_url: str) -> None:
    shown = status(fresh_url)
    as_json = status(fresh_url, "--json")

    assert shown.exit_code == 3, (shown.output, shown.exception)
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["database", "never", "migrated"]
    assert lines[1].split() == ["head", *migrate.HEADS]
    assert lines[2].startswith("state     behind: ")
    assert [line.split()[0] for line in lines[5:]] == revisions_after(None)
    assert as_json.exit_code == 3
    found = json.loads(as_json.stdout)
    assert found == {
        "state": "behind",
        "current": [],
        "heads": list(migrate.HEADS),
        "pending": found["pending"],
        "unknown": [],
    }
    assert [item["revision"] for item in found["pending"]] == revisions_after(None)
    assert found["pending"][0] == {"revision": "0001", "name": "books"}


def test_a_database_part_way_lists_what_is_left_in_order(fresh_url: str) -> None:
    assert run(fresh_url, "migrate", "0005").exit_code == 0

    result = status(fresh_url, "--json")

    assert result.exit_code == 3, (result.output, result.exception)
    found = json.loads(result.stdout)
    assert (found["state"], found["current"]) == ("behind", ["0005"])
    assert [item["revision"] for item in found["pending"]] == revisions_after("0005")


def test_a_database_at_the_head_exits_0(fresh_url: str) -> None:
    assert run(fresh_url, "migrate").exit_code == 0

    shown = status(fresh_url)
    as_json = status(fresh_url, "--json")

    assert shown.exit_code == 0, (shown.output, shown.exception)
    assert shown.stdout.splitlines() == [
        f"database  {' '.join(migrate.HEADS)}",
        f"head      {' '.join(migrate.HEADS)}",
        "state     at-head",
    ]
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {
        "state": "at-head",
        "current": list(migrate.HEADS),
        "heads": list(migrate.HEADS),
        "pending": [],
        "unknown": [],
    }


def test_a_revision_this_release_does_not_know_exits_4(fresh_url: str) -> None:
    """A newer release migrated the database: nothing can be said of what is pending."""
    assert run(fresh_url, "migrate").exit_code == 0
    asyncio.run(_set_version(fresh_url, "9999"))

    shown = status(fresh_url)
    as_json = status(fresh_url, "--json")

    assert shown.exit_code == 4, (shown.output, shown.exception)
    assert shown.stdout.splitlines()[2] == "state     unknown-revision"
    assert shown.stderr.splitlines() == [
        "bookshelf: the database is at 9999, which this release does not know: a newer "
        "release migrated it"
    ]
    assert as_json.exit_code == 4
    found = json.loads(as_json.stdout)
    assert (found["state"], found["unknown"], found["pending"]) == (
        "unknown-revision",
        ["9999"],
        [],
    )


def test_an_unreachable_database_is_a_one_line_error() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"

    result = status(url)

    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("bookshelf: cannot use the database at postgresql")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--status", "0005"), "bookshelf: --status takes no revision and no --downgrade"),
        (("--status", "--downgrade"), "bookshelf: --status takes no revision and no --downgrade"),
        (("--json",), "bookshelf: --json goes with --status"),
    ],
)
def test_status_options_that_do_not_fit_are_usage_errors(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    database = tmp_path / "untouched.db"

    result = run(f"sqlite:///{database}", "migrate", *args)

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]
    assert not database.exists()


def test_version_prints_the_package_version_without_a_database() -> None:
    result = CliRunner().invoke(cli, ["--version"], env={"BOOKSHELF_DATABASE_URL": "bogus://"})

    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout == f"bookshelf {package.__version__}\n"
