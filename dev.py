#!/usr/bin/env python3
"""Developer tasks that work on a fresh machine with only Python 3.11+.

    python3 dev.py serve    # install the pinned set, start Bookshelf on http://127.0.0.1:8000
    python3 dev.py test     # install the pinned set (with test tools), run the whole test suite
    python3 dev.py check    # lint, format check and strict type check
    python3 dev.py bench    # the benchmark suite (bench/): Bookshelf against a raw floor app
    python3 dev.py openapi  # rewrite openapi.json, the published contract (breaking: refused)
    python3 dev.py data     # rewrite the data files generated from zxcvbn and pycountry
    python3 dev.py client   # regenerate the Python client (clients/python/) from openapi.json
    python3 dev.py lock     # re-resolve dependencies and rewrite the hashed lock files
                            # (`lock --upgrade` then checks the fast path's adapter on them)
    python3 dev.py supply-chain  # SBOM of requirements.lock and its vulnerability audit

Each task first makes sure ``.venv`` holds exactly what ``requirements-dev.lock`` pins (hash
checked), bringing in uv when it is not installed. Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".bookshelf-installed"
CLIENT = ROOT / "clients" / "python"
# The hand-written files of clients/python/; everything else there is the generator's output.
# Its README is written for the client's users, in place of the generator's template.
CLIENT_SOURCES = ("README.md", "generator.yml", "generator.in", "generator.lock")
# The generator lives in a venv of its own (see clients/python/generator.in for why).
GENERATOR_VENV = VENV / "client-generator"
GENERATOR_BIN = GENERATOR_VENV / BIN.name


# The HTTP-level tests, run a second time with the fast path off (BOOKSHELF_FAST_PATH=false) on
# PostgreSQL: the plain-FastAPI app must answer exactly as the fast path's does.
STOCK_SUITE = (
    "tests/test_contract.py",
    "tests/test_openapi_contract.py",
    "tests/test_security_matrix.py",
    "tests/test_conditional.py",
    "tests/books/test_idempotency.py",
    "tests/books/test_errors.py",
    "tests/test_head_requests.py",
    "tests/test_request_path.py",
    "tests/fastpath/test_params.py",
)
# The fast path's pieces (src/bookshelf/fastpath/) and the tests that hold each to the public
# behaviour it reproduces: after an upgrade, a failure names the piece.
ADAPTER_TESTS = {
    "planned parameters (fastpath/params.py)": "tests/fastpath/test_params.py",
    "route copies (fastpath/routes.py)": "tests/fastpath/test_routes.py",
    "handler exits (fastpath/exits.py)": "tests/fastpath/test_exits.py",
    "lean middleware stack (fastpath/middleware.py)": "tests/fastpath/test_middleware.py",
    "statement cache keys (fastpath/statements.py)": "tests/fastpath/test_statements.py",
}


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
    # The generated client is installed too (editable; its dependencies are in the lock), so the
    # tests import it as its users do; a change to its pyproject.toml means a new install.
    client = CLIENT / "pyproject.toml"
    projects = [LOCK, ROOT / "pyproject.toml", *([client] if client.exists() else [])]
    wanted = hashlib.sha256(b"".join(path.read_bytes() for path in projects)).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    tool = uv()
    run(*tool, "pip", "install", "--python", PYTHON, "--require-hashes", "-r", LOCK)
    editable = ["-e", ".", *(["-e", str(CLIENT)] if client.exists() else [])]
    run(*tool, "pip", "install", "--python", PYTHON, "--no-deps", *editable)
    STAMP.write_text(wanted)


def ensure_generator() -> None:
    """Create the client generator's venv from clients/python/generator.lock, if not done yet."""
    python = GENERATOR_BIN / PYTHON.name
    if not python.exists():
        venv.EnvBuilder(with_pip=False).create(GENERATOR_VENV)
    lock = CLIENT / "generator.lock"
    stamp = GENERATOR_VENV / ".generator-installed"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    run(*uv(), "pip", "install", "--python", python, "--require-hashes", "-r", lock)
    stamp.write_text(wanted)


def serve(arguments: list[str]) -> None:
    ensure_environment()
    run(PYTHON, "run.py", *arguments)


def test(arguments: list[str]) -> None:
    ensure_environment()
    run(PYTHON, "-m", "pytest", "-n", "auto", "--cov", "--cov-report=term", *arguments)
    if not arguments:
        print("+ the HTTP-level tests again, with the fast path off (PostgreSQL)", flush=True)
        stock = {**os.environ, "BOOKSHELF_FAST_PATH": "false"}
        run(PYTHON, "-m", "pytest", "-n", "auto", "-k", "not sqlite", *STOCK_SUITE, env=stock)


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


def client(arguments: list[str]) -> None:
    """Regenerate clients/python/ from openapi.json, keeping its hand-written files;
    ``client --output DIR`` writes the generated files to DIR instead (the staleness test)."""
    ensure_environment()
    ensure_generator()
    if arguments and (arguments[0] != "--output" or len(arguments) != 2):
        sys.exit("usage: python3 dev.py client [--output DIR]")
    with tempfile.TemporaryDirectory() as scratch:
        # Generated outside the repository: the generator refuses (or, told to overwrite,
        # deletes) an existing folder, and its ruff hooks see no configuration but its own.
        generated = Path(scratch) / "client"
        path = f"{GENERATOR_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        run(
            GENERATOR_BIN / PYTHON.name,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            ROOT / "openapi.json",
            "--config",
            CLIENT / "generator.yml",
            "--meta",
            "uv",
            "--output-path",
            generated,
            "--fail-on-warning",
            env={**os.environ, "PATH": path},
        )
        if arguments:
            shutil.copytree(generated, Path(arguments[1]))
            return
        for name in CLIENT_SOURCES:
            (generated / name).unlink(missing_ok=True)
        for entry in CLIENT.iterdir():
            if entry.name in CLIENT_SOURCES:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        shutil.copytree(generated, CLIENT, dirs_exist_ok=True)
    print(f"regenerated {CLIENT.relative_to(ROOT)}/", flush=True)


def supply_chain(arguments: list[str]) -> None:
    """Write the runtime lock's SBOM and audit it (see tools/supply_chain.py)."""
    ensure_environment()
    run(PYTHON, "-m", "tools.supply_chain", *arguments)


def lock(arguments: list[str]) -> None:
    """Resolve (``lock --upgrade`` takes the newest allowed versions) and export hashed locks."""
    tool = [shutil.which("uv") or sys.exit("lock needs uv on PATH (pip install uv)")]
    common = ["export", "--quiet", "--no-emit-project", "--format", "requirements-txt"]
    run(*tool, "lock", *arguments)
    # The image installs requirements.lock only: the otel extra is in it, so tracing can be
    # switched on where the service runs (its packages are imported only when it is on).
    run(*tool, *common, "--no-dev", "--extra", "otel", "-o", "requirements.lock")
    run(*tool, *common, "--all-groups", "--all-extras", "-o", "requirements-dev.lock")
    # The client generator's own lock (clients/python/generator.in says why it is apart).
    generator = ["--quiet", "--universal", "--python-version", "3.11", "--generate-hashes"]
    run(
        *tool,
        "pip",
        "compile",
        *generator,
        *arguments,
        "clients/python/generator.in",
        "-o",
        "clients/python/generator.lock",
    )
    if "--upgrade" in arguments:
        check_adapter()


def check_adapter() -> None:
    """Run each adapter piece's tests on the newly locked set and name the pieces that fail.
    The pins in pyproject.toml stop at the releases the adapter was checked against: to try a
    newer FastAPI, Starlette or SQLAlchemy, raise its pin, then run `lock --upgrade`."""
    ensure_environment()
    failed = []
    for piece, tests in ADAPTER_TESTS.items():
        print(f"+ adapter: {piece}", flush=True)
        command = [str(PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-q", tests]
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(piece)
    if failed:
        print("adapter pieces that fail on the upgraded set:", *failed, sep="\n  ", flush=True)
        print(
            "Fix them before release, or serve with BOOKSHELF_FAST_PATH=false (stock parts "
            "only) until they are fixed.",
            flush=True,
        )
        sys.exit(1)
    print("adapter: every piece holds on the upgraded set", flush=True)


TASKS = {
    "serve": serve,
    "test": test,
    "check": check,
    "bench": bench,
    "openapi": openapi,
    "data": data,
    "client": client,
    "lock": lock,
    "supply-chain": supply_chain,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    TASKS[sys.argv[1]](sys.argv[2:])
