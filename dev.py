#!/usr/bin/env python3
"""Developer tasks that work on a fresh machine with only Python 3.11+.

    python3 dev.py serve    # install the pinned set, start Bookshelf on http://127.0.0.1:8000
    python3 dev.py test     # install the pinned set (with test tools), run the whole test suite
    python3 dev.py check    # lint, format check and strict type check
    python3 dev.py bench    # the benchmark suite (bench/): Bookshelf against a raw floor app
    python3 dev.py openapi  # rewrite openapi.json, the published contract (breaking: refused)
    python3 dev.py data     # rewrite the data files generated from zxcvbn and pycountry
    python3 dev.py lock     # re-resolve dependencies and rewrite the hashed lock files

Each task first makes sure ``.venv`` holds exactly what ``requirements-dev.lock`` pins (hash
checked), bringing in uv when it is not installed. Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".bookshelf-installed"


def run(*command: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    completed = subprocess.run([str(part) for part in command], cwd=ROOT, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def uv() -> list[str]:
    """A command that runs uv: the one on PATH, or one installed into the project's venv."""
    found = shutil.which("uv")
    if found:
        return [found]
    local = BIN / ("uv.exe" if os.name == "nt" else "uv")
    if not local.exists():
        run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv")
    return [str(local)]


def ensure_environment() -> None:
    """Create .venv and install the locked dependency set and the project, if not done yet."""
    if not PYTHON.exists():
        print(f"+ creating {VENV.name}", flush=True)
        venv.EnvBuilder(with_pip=shutil.which("uv") is None).create(VENV)
    wanted = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    tool = uv()
    run(*tool, "pip", "install", "--python", PYTHON, "--require-hashes", "-r", LOCK)
    run(*tool, "pip", "install", "--python", PYTHON, "--no-deps", "-e", ".")
    STAMP.write_text(wanted)


def serve(arguments: list[str]) -> None:
    ensure_environment()
    run(PYTHON, "run.py", *arguments)


def test(arguments: list[str]) -> None:
    ensure_environment()
    run(PYTHON, "-m", "pytest", "-n", "auto", "--cov", "--cov-report=term", *arguments)


def check(_arguments: list[str]) -> None:
    ensure_environment()
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "ruff", "format", "--check", ".")
    run(PYTHON, "-m", "mypy")


def bench(arguments: list[str]) -> None:
    ensure_environment()
    run(PYTHON, "-m", "bench", *arguments)


def openapi(_arguments: list[str]) -> None:
    """Rewrite openapi.json from the app; refused for a breaking change without a new major
    version (see src/bookshelf/contract.py)."""
    ensure_environment()
    run(PYTHON, "-m", "bookshelf.contract")


def data(_arguments: list[str]) -> None:
    """Rewrite the package's common-password list and language codes from the packages they
    come from (see tools/shipped_data.py)."""
    ensure_environment()
    run(PYTHON, "-m", "tools.shipped_data")


def lock(arguments: list[str]) -> None:
    """Resolve (``lock --upgrade`` takes the newest allowed versions) and export hashed locks."""
    tool = [shutil.which("uv") or sys.exit("lock needs uv on PATH (pip install uv)")]
    common = ["export", "--quiet", "--no-emit-project", "--format", "requirements-txt"]
    run(*tool, "lock", *arguments)
    run(*tool, *common, "--no-dev", "-o", "requirements.lock")
    run(*tool, *common, "--all-groups", "--all-extras", "-o", "requirements-dev.lock")


TASKS = {
    "serve": serve,
    "test": test,
    "check": check,
    "bench": bench,
    "openapi": openapi,
    "data": data,
    "lock": lock,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    TASKS[sys.argv[1]](sys.argv[2:])
