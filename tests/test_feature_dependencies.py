"""Features depend on each other one way: sign-in builds on accounts, reviews go through the
books service. The import checks run in a fresh interpreter, which lists what came along."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import bookshelf
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


# The layout (issue 10): things where they would be looked for.

PACKAGE_DIR = Path(bookshelf.__file__ or "").parent
# The migration scripts run only inside Alembic; ``__main__`` runs the CLI when imported.
_NOT_IMPORTABLE = ("bookshelf.__main__", "bookshelf.db.migrations")


def _source_files(*roots: Path) -> list[Path]:
    return sorted(path for root in roots for path in root.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_modules() -> list[str]:
    names = (_module_name(path) for path in _source_files(PACKAGE_DIR))
    return [name for name in names if not name.startswith(_NOT_IMPORTABLE)]


def test_no_top_level_module_is_named_like_a_standard_library_module() -> None:
    # ``bookshelf.http`` or ``bookshelf.types`` read, in a traceback or an import, like the
    # standard library's; inside a subpackage (``bookshelf.db.types``) the name is qualified.
    top_level = {path.stem for path in PACKAGE_DIR.glob("*.py")} | {
        path.name for path in PACKAGE_DIR.iterdir() if (path / "__init__.py").exists()
    }
    assert sorted(top_level & sys.stdlib_module_names) == []


def test_error_classes_live_in_exceptions_modules() -> None:
    # ConfigurationError stops the start-up; it is the settings' own error, never a response.
    allowed = {"bookshelf.config.ConfigurationError"}
    misplaced = []
    for name in _package_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not name.endswith("exceptions")
                and f"{name}.{value.__name__}" not in allowed
            ):
                misplaced.append(f"{name}.{value.__name__}")
    assert misplaced == []


def _dependency_aliases(path: Path) -> set[str]:
    """Names bound at module level to ``Annotated[..., Depends(...)]``."""
    aliases = set()
    for node in ast.parse(path.read_text()).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Subscript)
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "Annotated"
            and any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "Depends"
                for call in ast.walk(node.value.slice)
            )
        ):
            aliases.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return aliases


def test_each_dependency_alias_is_imported_from_the_module_that_defines_it() -> None:
    home: dict[str, str] = {}
    for path in _source_files(PACKAGE_DIR):
        for alias in _dependency_aliases(path):
            assert alias not in home, f"{alias} is defined twice"
            home[alias] = _module_name(path)
    assert {"ConnectionDep", "SettingsDep", "CurrentUser", "BookId", "Idempotent"} <= set(home)
    tests_dir = Path(__file__).parent
    elsewhere = []
    for path in _source_files(PACKAGE_DIR, tests_dir, tests_dir.parent / "bench"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module is not None:
                elsewhere.extend(
                    f"{path.name}: {alias.name} from {node.module}"
                    for alias in node.names
                    if alias.name in home and home[alias.name] != node.module
                )
    assert elsewhere == []


def test_the_middleware_stack_is_built_in_one_module() -> None:
    builders = {
        _module_name(path)
        for path in _source_files(PACKAGE_DIR)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in {"add_middleware", "instrument_app"}
        and isinstance(node.ctx, ast.Load)
    }
    # ops.tracing wraps OpenTelemetry's instrument_app; middleware.py alone calls it.
    assert builders <= {"bookshelf.middleware", "bookshelf.ops.tracing"}
    assert "bookshelf.middleware" in builders
