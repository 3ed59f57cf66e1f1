"""The published contract: ``openapi.json`` is exactly the schema the app serves, the Python
client in ``clients/python/`` is exactly what the generator makes of it, and the classifier that
decides whether a change to it breaks clients (``python3 dev.py openapi`` refuses a breaking
change without a new major version)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bookshelf import __version__, contract
from bookshelf.contract import Schema, breaking_changes

BOOKS, BOOK = "/api/v1/books", "/api/v1/books/{book_id}"
ROOT = contract.SCHEMA_FILE.parent
CLIENT = ROOT / "clients" / "python"
# Written by hand and kept when the client is regenerated (CLIENT_SOURCES in dev.py).
CLIENT_SOURCES = {"README.md", "generator.yml", "generator.in", "generator.lock"}
# Left beside the client by importing or checking it, never by the generator.
CLIENT_LEFTOVERS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


@pytest.fixture(scope="module")
def served() -> Schema:
    return contract.current_schema()


def test_the_committed_openapi_json_is_the_schema_the_app_serves(served: Schema) -> None:
    committed = contract.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == contract.render(served), (
        "openapi.json differs from the app's schema: run `python3 dev.py openapi` and commit "
        "the file (a breaking change needs a new major version)"
    )
    assert json.loads(committed)["info"]["version"] == __version__


def _client_files(folder: Path) -> dict[str, bytes]:
    """Every file of a client folder by its relative name, less the hand-written ones and what
    importing or checking the client leaves behind."""
    found = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        leftover = CLIENT_LEFTOVERS.intersection(relative.parts)
        if path.is_file() and not leftover and relative.as_posix() not in CLIENT_SOURCES:
            found[relative.as_posix()] = path.read_bytes()
    return found


def test_the_committed_python_client_is_generated_from_openapi_json(tmp_path: Path) -> None:
    generated = tmp_path / "client"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "dev.py"), "client", "--output", str(generated)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    fresh, committed = _client_files(generated), _client_files(CLIENT)
    assert "bookshelf_client/api/books/update_book.py" in fresh
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, (
        f"clients/python/ differs from the generator's output ({', '.join(stale)}): "
        "run python3 dev.py client and commit the result"
    )


def _changed(served: Schema, change: Callable[[Schema], object]) -> Schema:
    new = copy.deepcopy(served)
    change(new)
    return new


def _param(name: str, *, required: bool) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


BREAKING: dict[str, tuple[Callable[[Schema], object], str]] = {
    "operation removed": (
        lambda s: s["paths"][BOOKS].pop("post"),
        "POST /api/v1/books: operation removed",
    ),
    "status removed": (
        lambda s: s["paths"][BOOK]["get"]["responses"].pop("404"),
        "GET /api/v1/books/{book_id}: response 404 removed",
    ),
    "response property removed": (
        lambda s: s["components"]["schemas"]["Book"]["properties"].pop("title"),
        "GET /api/v1/books/{book_id}: response 200 property 'title' removed",
    ),
    "new required parameter": (
        lambda s: s["paths"][BOOKS]["get"]["parameters"].append(_param("shelf", required=True)),
        "GET /api/v1/books: new required query parameter 'shelf'",
    ),
    "parameter became required": (
        lambda s: [
            p.update(required=True)
            for p in s["paths"][BOOKS]["get"]["parameters"]
            if p["name"] == "limit"
        ],
        "GET /api/v1/books: query parameter 'limit' became required",
    ),
    "enum narrowed": (
        lambda s: s["components"]["schemas"]["BookSort"]["enum"].remove("title"),
        "GET /api/v1/books: query parameter 'sort' enum narrowed",
    ),
    "body property became required": (
        lambda s: s["components"]["schemas"]["BookCreate"]["required"].append("subtitle"),
        "POST /api/v1/books: body property 'subtitle' became required",
    ),
    "body type narrowed": (
        lambda s: s["components"]["schemas"]["BookCreate"]["properties"].update(
            title={"type": "integer"}
        ),
        "POST /api/v1/books: body property 'title' type ['string'] -> ['integer']",
    ),
}


@pytest.mark.parametrize("case", BREAKING)
def test_breaking_changes_are_named(served: Schema, case: str) -> None:
    change, expected = BREAKING[case]
    assert expected in breaking_changes(served, _changed(served, change))


COMPATIBLE: dict[str, Callable[[Schema], object]] = {
    "nothing": lambda s: None,
    "new operation": lambda s: s["paths"].__setitem__(
        "/api/v1/shelves", {"get": {"responses": {"200": {"description": "OK"}}}}
    ),
    "new optional parameter": lambda s: s["paths"][BOOKS]["get"]["parameters"].append(
        _param("shelf", required=False)
    ),
    "new response property": lambda s: s["components"]["schemas"]["Book"]["properties"].update(
        shelf={"type": "string"}
    ),
    "enum widened": lambda s: s["components"]["schemas"]["BookSort"]["enum"].append("isbn"),
}


@pytest.mark.parametrize("case", COMPATIBLE)
def test_compatible_changes_are_not_breaking(served: Schema, case: str) -> None:
    assert breaking_changes(served, _changed(served, COMPATIBLE[case])) == []


def test_writing_refuses_a_breaking_change_without_a_new_major_version(
    tmp_path: Path, served: Schema
) -> None:
    published = tmp_path / "openapi.json"
    # The published file has an operation the app no longer serves.
    with_extra = _changed(
        served,
        lambda s: s["paths"].__setitem__(
            "/api/v1/shelves", {"get": {"responses": {"200": {"description": "OK"}}}}
        ),
    )
    published.write_text(contract.render(with_extra), encoding="utf-8")
    assert contract.write(published) == 1
    assert json.loads(published.read_text(encoding="utf-8")) == with_extra

    # A compatible change (the app adds what the file lacks) is written.
    without_post = _changed(served, lambda s: s["paths"][BOOKS].pop("post"))
    published.write_text(contract.render(without_post), encoding="utf-8")
    assert contract.write(published) == 0
    assert published.read_text(encoding="utf-8") == contract.render(served)
