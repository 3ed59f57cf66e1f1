"""Only the adapter (``bookshelf.fastpath``) reaches into FastAPI's, Starlette's, SQLAlchemy's or
pydantic's internals: every other module of the package is read (``ast``) for a private name
it would import or use, so an upgrade can break the fast path alone, which
``BOOKSHELF_FAST_PATH=false`` turns off."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bookshelf

PACKAGE_DIR = Path(bookshelf.__file__ or "").parent
ADAPTER_DIR = PACKAGE_DIR / "fastpath"
LIBRARIES = frozenset({"fastapi", "starlette", "sqlalchemy", "pydantic", "pydantic_core"})
# Modules private as a whole, though their names are not: FastAPI's dependency machinery.
PRIVATE_MODULES = ("fastapi.dependencies",)
# Keys FastAPI keeps in a request's scope for itself (its exit stacks).
PRIVATE_SCOPE_KEY = re.compile(r"fastapi_\w*astack")
# Arguments of SQLAlchemy's compiler that only its own execution passes.
PRIVATE_KEYWORDS = frozenset({"cache_key", "extracted_parameters"})
# A named tuple's own API, underscored so as not to clash with field names.
NAMED_TUPLE_API = frozenset({"_asdict", "_make", "_replace", "_fields", "_field_defaults"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _from_library(module: str) -> bool:
    return module.split(".")[0] in LIBRARIES


def _own_private_names(paths: list[Path]) -> set[str]:
    """The underscored names the package defines itself: using one is not reaching in."""
    names = set(NAMED_TUPLE_API)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if _is_private(name)}


def private_uses(source: str, own: set[str]) -> list[str]:
    """What ``source`` takes from the libraries' internals, one line each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [
                f"{line}: import {alias.name}"
                for alias in node.names
                if _from_library(alias.name)
                and (
                    any(_is_private(part) for part in alias.name.split("."))
                    or alias.name.startswith(PRIVATE_MODULES)
                )
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and _from_library(node.module):
            private_module = any(_is_private(part) for part in node.module.split("."))
            found += [
                f"{line}: from {node.module} import {alias.name}"
                for alias in node.names
                if private_module
                or node.module.startswith(PRIVATE_MODULES)
                or _is_private(alias.name)
            ]
        elif isinstance(node, ast.Attribute) and _is_private(node.attr):
            receiver = node.value
            on_itself = isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
            if not on_itself and node.attr not in own:
                found.append(f"{line}: .{node.attr}")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None)
            if name in ("getattr", "setattr", "hasattr") and len(node.args) > 1:
                attribute = node.args[1]
                if (
                    isinstance(attribute, ast.Constant)
                    and isinstance(attribute.value, str)
                    and _is_private(attribute.value)
                    and attribute.value not in own
                ):
                    found.append(f"{line}: {name}(..., {attribute.value!r})")
            found += [
                f"{line}: {keyword.arg}="
                for keyword in node.keywords
                if keyword.arg in PRIVATE_KEYWORDS
            ]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and PRIVATE_SCOPE_KEY.search(node.value)
        ):
            found.append(f"{line}: {node.value!r}")
    return found


def _package_files() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_no_module_outside_the_adapter_reaches_into_a_framework() -> None:
    files = _package_files()
    own = _own_private_names(files)
    reaching = {
        str(path.relative_to(PACKAGE_DIR)): uses
        for path in files
        if ADAPTER_DIR not in path.parents and (uses := private_uses(path.read_text(), own))
    }
    assert reaching == {}, "move these into bookshelf/fastpath/ (with a stock fallback)"


def test_the_adapter_is_where_the_internals_are() -> None:
    """The check sees them where they are: if it found nothing here, it would be blind."""
    own = _own_private_names(_package_files())
    found = {
        path.name: private_uses(path.read_text(), own) for path in sorted(ADAPTER_DIR.glob("*.py"))
    }
    assert all(found[name] for name in ("params.py", "routes.py", "exits.py", "statements.py"))


@pytest.mark.parametrize(
    "source",
    [
        "from fastapi._compat import ModelField",
        "import fastapi._compat",
        "from fastapi.dependencies.utils import request_params_to_args",
        "from fastapi.dependencies.models import Dependant",
        "from starlette.routing import _DefaultLifespan",
        "key = statement._generate_cache_key()",
        "getattr(route, '_embed_body_fields')",
        "statement.compile(dialect=d, cache_key=key)",
        "compiled.construct_params(p, extracted_parameters=b)",
        "exits = request.scope['fastapi_function_astack']",
        "STACK = 'fastapi_inner_astack'",
    ],
)
def test_each_kind_of_reaching_in_is_seen(source: str) -> None:
    assert private_uses(source, own=set()) != []


def test_public_names_and_the_package_own_are_not_reaching_in() -> None:
    source = (
        "from fastapi import Depends\n"
        "from fastapi.routing import APIRoute\n"
        "from starlette.routing import Match\n"
        "row._asdict()\n"
        "other._helper()\n"
        "self._private\n"
        "statement.compile(dialect=d, column_keys=k)\n"
    )
    assert private_uses(source, own={"_helper", "_asdict"}) == []
