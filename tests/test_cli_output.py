"""The operator's tables: cells as a person reads them, columns aligned by what a terminal
shows (wide characters take two columns), and nothing that a terminal would act on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bookshelf.cli.output import LONGEST_CELL, cell, print_table


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        (True, "yes"),
        (False, "no"),
        (3, "3"),
        (
            datetime(2026, 12, 4, 19, 30, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-12-04 17:30:05Z",
        ),
        ("Zoë 李", "Zoë 李"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred\x9b", "\\x1b[31mred\\x9b"),
        ("right\u202eto left", "right\\u202eto left"),
    ],
)
def test_a_cell_is_readable_and_inert(value: object, shown: str) -> None:
    assert cell(value) == shown


def test_a_long_cell_is_shortened_to_the_limit() -> None:
    shown = cell("x" * 500)

    assert len(shown) == LONGEST_CELL
    assert shown.endswith("…")


def test_columns_line_up_on_screen_with_wide_characters(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(("name", "role"), [("李李", "admin"), ("ab", None), ("e\u0301", "reader")])

    lines = capsys.readouterr().out.splitlines()
    # "李李" takes four columns, so "name" is padded to four; "é" (e + combining accent) one.
    assert lines == ["name  role", "李李  admin", "ab    -", "e\u0301     reader"]


def test_a_table_without_headers_or_rows(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(None, [("database", "0007"), ("state", "at-head")])
    print_table(None, [])

    assert capsys.readouterr().out.splitlines() == ["database  0007", "state     at-head"]
