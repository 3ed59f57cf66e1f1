"""``bookshelf import FILE`` and ``bookshelf export``: the bulk service from the command line,
straight to the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bookshelf.books.models import books
from bookshelf.cli import app as cli
from bookshelf.db.engine import create_engine
from tests.conftest import make_settings
from tests.factories import book_payload, count_rows

pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def books_in(url: str) -> int:
    async def count() -> int:
        engine = create_engine(make_settings(url))
        try:
            return await count_rows(engine, books)
        finally:
            await engine.dispose()

    return asyncio.run(count())


def invoke(runner: CliRunner, url: str, *args: str) -> Any:
    result = runner.invoke(cli, list(args), env={"BOOKSHELF_DATABASE_URL": url})
    assert "Traceback" not in result.output, result.output
    return result


def write_ndjson(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    path.write_text(
        "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    )
    return path


def test_import_then_export_round_trips_every_book(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    payloads = [book_payload(language="fr" if n % 3 == 0 else "en") for n in range(1, 2501)]
    source = write_ndjson(tmp_path / "books.ndjson", [*payloads])
    imported = invoke(runner, database_url, "import", str(source))
    assert imported.exit_code == 0, imported.output
    assert "imported 2500 books; 0 line(s) failed" in imported.stdout
    assert books_in(database_url) == 2500

    target = tmp_path / "out" / "export.ndjson"
    target.parent.mkdir()
    exported = invoke(runner, database_url, "export", "--output", str(target))
    assert exported.exit_code == 0, exported.output
    assert "exported 2500 books" in exported.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [book["id"] for book in lines] == sorted(book["id"] for book in lines)
    fields = list(payloads[0])
    assert sorted((b["isbn"], b["title"]) for b in lines) == sorted(
        (p["isbn"], p["title"]) for p in payloads
    )
    by_isbn = {book["isbn"]: book for book in lines}
    assert all({f: by_isbn[p["isbn"]][f] for f in fields} == p for p in payloads)
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind

    # The export is an import file: exported books are all duplicates now.
    again = write_ndjson(tmp_path / "again.ndjson", [{f: b[f] for f in fields} for b in lines[:3]])
    repeated = invoke(runner, database_url, "import", str(again))
    assert repeated.exit_code == 1
    assert repeated.stderr.count("Another book already has the ISBN") == 3


def test_export_to_stdout_with_filters(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    source = write_ndjson(
        tmp_path / "books.ndjson",
        [book_payload(language="fr"), book_payload(language="en"), book_payload(language="fr")],
    )
    assert invoke(runner, database_url, "import", str(source)).exit_code == 0
    result = invoke(runner, database_url, "export", "--language", "fr")
    assert result.exit_code == 0, result.output
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert [book["language"] for book in exported] == ["fr", "fr"]
    bad = invoke(runner, database_url, "export", "--published-from", "yesterday")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("bookshelf: --published-from:")


def test_import_reports_bad_lines_and_keeps_the_good_ones(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    twin = book_payload()
    source = write_ndjson(
        tmp_path / "mixed.ndjson", [book_payload(), "{oops", book_payload(title=""), twin, twin]
    )
    result = invoke(runner, database_url, "import", str(source))
    assert result.exit_code == 1
    assert "imported 2 books; 3 line(s) failed" in result.stdout
    assert "line 2: Line 2 is not valid JSON." in result.stderr
    assert "line 3: " in result.stderr
    assert "  title: " in result.stderr
    assert "line 5: Line 4 of this import already has the ISBN" in result.stderr
    assert books_in(database_url) == 2


def test_import_all_or_nothing_writes_nothing_when_a_line_fails(
    runner: CliRunner, database_url: str, tmp_path: Path
) -> None:
    good = [book_payload() for _ in range(1500)]  # more than one batch, so batches commit
    source = write_ndjson(tmp_path / "bad.ndjson", [*good, book_payload(page_count=-1)])
    result = invoke(runner, database_url, "import", "--all-or-nothing", str(source))
    assert result.exit_code == 1
    assert "line 1501:" in result.stderr
    assert "nothing imported" in result.stderr
    assert books_in(database_url) == 0


def test_import_of_a_missing_file_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = invoke(runner, url, "import", str(tmp_path / "nope.ndjson"))
    assert result.exit_code == 2
    assert result.stderr.startswith("bookshelf: cannot read ")
