"""Features depend on each other one way: sign-in builds on accounts, reviews go through the
books service. The import checks run in a fresh interpreter, which lists what came along."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import bookshelf.reviews.service


def _modules_loaded_by(module: str) -> set[str]:
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(completed.stdout.split())


def test_account_management_needs_no_sign_in_code() -> None:
    # auth.service imports users.service (USER_COLUMNS); the reverse would be a cycle.
    assert "bookshelf.auth.service" not in _modules_loaded_by("bookshelf.users.service")


@pytest.mark.parametrize("module", ["bookshelf.users.models", "bookshelf.users.schemas"])
def test_account_tables_and_schemas_load_no_service(module: str) -> None:
    loaded = _modules_loaded_by(module)
    assert not {"bookshelf.auth.service", "bookshelf.users.service"} & loaded


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, and every ``from`` module with its names."""
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            imported.add(node.module)
            imported.update(f"{node.module}.{alias.name}" for alias in node.names)
    return imported


def test_reviews_reach_the_books_table_only_through_the_books_service() -> None:
    imported = _imported_modules(Path(bookshelf.reviews.service.__file__ or ""))
    assert "bookshelf.books.models" not in imported
    assert "bookshelf.books.service" in imported
