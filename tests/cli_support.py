"""Running the ``bookshelf`` command line from async tests, beside a started app.

The command runs its own event loop (``asyncio.run``), so it is invoked in a thread of its own
while the test's loop waits; CliRunner keeps stdout and stderr apart.
"""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner, Result

from bookshelf.cli import app as cli


async def bookshelf(database_url: str, *args: str) -> Result:
    """``bookshelf *args`` with BOOKSHELF_DATABASE_URL set to ``database_url`` (and nothing
    else from the environment: use with the ``clean_environment`` fixture)."""
    runner = CliRunner()
    env = {"BOOKSHELF_DATABASE_URL": database_url}
    return await asyncio.to_thread(runner.invoke, cli, list(args), env=env)


def assert_refused(result: Result, message: str, *, exit_code: int = 1) -> None:
    """The command failed with exactly one line on stderr, ``bookshelf: <message>``, and
    printed nothing on stdout."""
    assert result.exit_code == exit_code, (result.stdout, result.stderr, result.exception)
    assert result.stderr.splitlines() == [f"bookshelf: {message}"]
    assert result.stdout == ""


def assert_ok(result: Result) -> str:
    """The command succeeded, silently on stderr; its stdout."""
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stderr == ""
    return result.stdout


def table(stdout: str) -> list[list[str]]:
    """An aligned table's lines (header first) split into cells at the header's column starts,
    so that a cell with a space (a display name) stays whole; asserts that every line has the
    two-space gap before each column, i.e. that the columns line up."""
    header, *rows = stdout.splitlines()
    starts = [
        index
        for index, char in enumerate(header)
        if char != " " and (index == 0 or header[index - 2 : index] == "  ")
    ]
    cells = []
    for line in [header, *rows]:
        for start in starts[1:]:
            assert line[start - 2 : start] == "  ", (line, start)
        bounds = [*starts[1:], None]
        cells.append([line[start:end].strip() for start, end in zip(starts, bounds, strict=True)])
    return cells
