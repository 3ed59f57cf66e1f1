"""Features depend on each other one way: sign-in builds on accounts, reviews go through the
books service. Every module of every feature is checked: its own imports (read from the
source), and for accounts what a fresh interpreter loads along with each module."""

from __future__ import annotations

import ast
import graphlib
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import bookshelf

PACKAGE_DIR = Path(bookshelf.__file__ or "").parent
# The migration scripts run only inside Alembic; ``__main__`` runs the CLI when imported.
_NOT_IMPORTABLE = ("bookshelf.__main__", "bookshelf.db.migrations")


def _source_files(*roots: Path) -> list[Path]:
    return sorted(path for root in roots for path in root.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules_loaded_by(module: str) -> set[str]:
    script = f"import sys, {module}; print('\\n'.join(sys.modules))"
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(completed.stdout.split())


# Feature (a package with tables of its own) -> the features its modules may import
# (ARCHITECTURE.md, "Who imports whom"). Layers such as ``db`` and ``ops`` are not features.
MAY_IMPORT: dict[str, set[str]] = {
    "users": set(),
    "mail": set(),
    "auth": {"users", "mail"},
    "idempotency": {"auth"},
    "books": {"auth", "idempotency"},
    "reviews": {"books", "users", "auth", "idempotency"},
}


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


def _feature_of(module: str) -> str | None:
    parts = module.split(".")
    return (
        parts[1] if len(parts) > 1 and parts[0] == "bookshelf" and parts[1] in MAY_IMPORT else None
    )


def test_every_feature_is_in_the_table_and_the_table_has_no_cycle() -> None:
    assert set(MAY_IMPORT) == {path.parent.name for path in PACKAGE_DIR.glob("*/models.py")}
    tuple(graphlib.TopologicalSorter(MAY_IMPORT).static_order())  # raises on a cycle


def test_features_import_each_other_one_way() -> None:
    wrong = sorted(
        f"{_module_name(path)} imports {name}"
        for feature, allowed in MAY_IMPORT.items()
        for path in _source_files(PACKAGE_DIR / feature)
        for name in _imported_modules(path)
        if _feature_of(name) not in {None, feature, *allowed}
    )
    assert wrong == []


def _feature_modules(feature: str) -> list[str]:
    return [_module_name(path) for path in _source_files(PACKAGE_DIR / feature)]


@pytest.mark.parametrize("module", _feature_modules("users"))
def test_no_account_module_loads_sign_in_code(module: str) -> None:
    # auth builds on users (accounts); the reverse would be a cycle.
    loaded = _modules_loaded_by(module)
    assert sorted(name for name in loaded if name.startswith("bookshelf.auth")) == []


@pytest.mark.parametrize("module", ["bookshelf.users.models", "bookshelf.users.schemas"])
def test_account_tables_and_schemas_load_no_service(module: str) -> None:
    assert "bookshelf.users.service" not in _modules_loaded_by(module)


def test_reviews_reach_the_books_table_only_through_the_books_service() -> None:
    imported = {
        name for path in _source_files(PACKAGE_DIR / "reviews") for name in _imported_modules(path)
    }
    assert not {name for name in imported if name.startswith("bookshelf.books.models")}
    assert "bookshelf.books.service" in imported


# The layout (issue 10): things where they would be looked for.


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


def _dependency_aliases(path: Path, markers: frozenset[str] = frozenset({"Depends"})) -> set[str]:
    """Names bound at module level to ``Annotated[..., Depends(...)]`` (or another of
    ``markers``)."""
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
                and call.func.id in markers
                for call in ast.walk(node.value.slice)
            )
        ):
            aliases.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return aliases


# What FastAPI reads from a request: an alias of one is a dependency of the routes using it.
_REQUEST_MARKERS = frozenset({"Depends", "Security", "Header", "Query", "Path", "Cookie", "Body"})


def test_dependency_aliases_live_in_dependencies_modules() -> None:
    """ARCHITECTURE: ``SettingsDep`` in ``dependencies.py``, every other alias in its
    feature's ``dependencies.py`` (the data layer's ``ConnectionDep`` in ``db.connections``),
    never in a routes module."""
    homes = {
        f"{_module_name(path)}.{alias}": _module_name(path)
        for path in _source_files(PACKAGE_DIR)
        for alias in _dependency_aliases(path, _REQUEST_MARKERS)
    }
    misplaced = [
        alias
        for alias, module in homes.items()
        if not module.endswith("dependencies") and module != "bookshelf.db.connections"
    ]
    assert misplaced == []


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


def test_a_book_id_is_parsed_in_one_place() -> None:
    """``books.dependencies.book_id_from_path``: ``BookId`` uses it, and so does the one route
    that parses its id itself (``GET /books/{book_id}``, to keep its dependencies few)."""
    parsers = [
        f"{_module_name(path)}:{node.lineno}"
        for path in _source_files(PACKAGE_DIR)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and any(isinstance(arg, ast.Name) and arg.id == "BookNotFound" for arg in node.args)
        and isinstance(node.func, ast.Name)
        and node.func.id == "uuid_or_not_found"
    ]
    assert len(parsers) == 1
    assert parsers[0].startswith("bookshelf.books.dependencies:")


# Past ~400 lines a module is split by use case (STYLE.md). The exceptions, and why:
LONGER_MODULES = {
    # Every BOOKSHELF_* variable in one Settings class, each documented where it is declared.
    "bookshelf.config",
}


def test_modules_stay_small() -> None:
    lengths = {
        _module_name(path): len(path.read_text().splitlines())
        for path in _source_files(PACKAGE_DIR)
    }
    assert {module for module, lines in lengths.items() if lines > 400} <= LONGER_MODULES
