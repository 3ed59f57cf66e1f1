"""A serving worker's memory is what it imports (the fast-path target is ≤ 100 MiB per worker
after load): what only migrating, the other commands or the tests need stays out of it.

With one worker, ``bookshelf serve`` itself serves, so the command-line module counts too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# package or module -> why a serving process must not load it
NOT_IN_A_WORKER = {
    "alembic": "~12 MiB with its templating; only migrating loads it",
    "mako": "Alembic's templates",
    "sqlalchemy.orm": "~7 MiB; the service builds Core statements only",
    "sqlalchemy.ext.asyncio": "the async engine: Alembic's and the tests', not the data layer's",
    "rich.progress": "the progress bars of seed, import and export",
    "bookshelf.books.seed": "the fake-book generator of `bookshelf seed`",
    "zxcvbn": "the source of the shipped common-password list (tests only)",
    "pycountry": "the source of the shipped language codes (tests only)",
}

SERVING = {
    "app": (
        "import bookshelf.main, bookshelf.ops.health; from bookshelf.config import Settings; "
        "bookshelf.main.create_app(Settings())"
    ),
    "cli": "import bookshelf.cli",
}


def _loaded(script: str) -> set[str]:
    printed = subprocess.run(
        [sys.executable, "-c", f"import sys; {script}; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(printed.split())


@pytest.mark.parametrize("entry", list(SERVING))
def test_a_serving_process_loads_only_what_serving_needs(entry: str) -> None:
    loaded = _loaded(SERVING[entry])
    found = {
        name: why
        for name, why in NOT_IN_A_WORKER.items()
        if any(module == name or module.startswith(name + ".") for module in loaded)
    }
    assert found == {}


def test_the_check_sees_a_forbidden_module_when_it_is_loaded() -> None:
    """The check above would pass vacuously if the listing failed to show submodules."""
    loaded = _loaded("import bookshelf.db.engine")
    assert "sqlalchemy.orm" in loaded
    assert "sqlalchemy.ext.asyncio" in loaded
