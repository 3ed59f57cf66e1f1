"""How the operator's commands print what they found: an aligned table for a person, or JSON
with stable keys for a script (``--json``). Both go to stdout; notes for a person go to stderr.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import typer

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable keys) instead of a table.")
]
CursorOption = Annotated[
    str | None,
    typer.Option(help="Go on from where a listing stopped (the cursor it printed)."),
]
# Long enough for what a table cell is for (SMTP replies can be hundreds of characters);
# --json gives the whole value.
LONGEST_CELL = 60


def _shown(character: str) -> str:
    """The character, or its escape if a terminal would act on it rather than print it."""
    if character.isprintable():
        return character
    return character.encode("unicode_escape").decode("ascii")


def cell(value: object) -> str:
    """A value as a table shows it. Text comes from users (display names) and mail servers
    (errors): control and format characters, escape sequences among them, are shown escaped,
    never sent to the terminal as they are."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = "".join(_shown(character) for character in str(value))
    return text if len(text) <= LONGEST_CELL else text[: LONGEST_CELL - 1] + "…"


def _width(text: str) -> int:
    """Columns the text takes on a terminal: wide (East Asian) characters two, combining none."""
    return sum(
        0
        if unicodedata.combining(character)
        else 2
        if unicodedata.east_asian_width(character) in "WF"
        else 1
        for character in text
    )


def print_table(headers: Sequence[str] | None, rows: Sequence[Sequence[object]]) -> None:
    """The headers (if any), then one line per row, each column as wide as its widest cell."""
    lines = [
        *([list(headers)] if headers else []),
        *([cell(value) for value in row] for row in rows),
    ]
    if not lines:
        return
    widths = [max(_width(line[column]) for line in lines) for column in range(len(lines[0]))]
    for line in lines:
        padded = (
            text + " " * (width - _width(text)) for text, width in zip(line, widths, strict=True)
        )
        typer.echo("  ".join(padded).rstrip())


def print_json(value: Any) -> None:
    """``value`` (JSON-ready: a model's ``model_dump(mode="json")``) as indented JSON; every
    non-ASCII character escaped, so no byte of it can act on a terminal."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=True))


def note_next_page(next_cursor: str | None) -> None:
    """For a person reading a table: how to get the next page (scripts read ``next_cursor``)."""
    if next_cursor is not None:
        print(f"more: run again with --cursor {next_cursor}", file=sys.stderr)


class Page(Protocol):
    next_cursor: str | None

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def print_page(
    page: Page, rows: Sequence[Sequence[object]], headers: Sequence[str], *, json_output: bool
) -> None:
    """A page of a listing: the whole page as JSON for scripts, else its rows as a table and,
    on stderr, how to get the next page."""
    if json_output:
        print_json(page.model_dump(mode="json"))
        return
    print_table(headers, rows)
    note_next_page(page.next_cursor)
