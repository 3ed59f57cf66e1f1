"""The image's command starts under the pod's own conditions and the pod becomes ready; the
mail worker's Deployment starts the same way and delivers the mail a request queued.

The conditions are read from the manifests, not restated here: the user the pod runs as, a
read-only root filesystem with only the Deployment's ``emptyDir`` volumes writable, the
environment from its ConfigMap and ``env`` (the Secret's values are the test's), the image's
CMD, and the migration Job run the same way first. Bubblewrap builds that sandbox without a
container engine; the network is the host's, and every listener is on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import throwaway_postgres_database
from tests.deploy.manifests import (
    container_environment,
    dockerfile_command,
    dockerfile_instructions,
    only_container,
    pod_spec,
    unavailable,
)
from tests.mail.support import SmtpServer, smtp_server
from tests.ops.conftest import DEFAULT_REDIS_URL
from tests.servers import free_port

VENV_BIN = Path(sys.executable).parent
CHECKOUT = Path(__file__).resolve().parents[2]
# Generous: two workers import the whole app, slow on a loaded 2-core machine.
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0


def bubblewrap() -> str:
    found = shutil.which("bwrap")
    if found is None:
        unavailable("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        raise AssertionError("unreachable")
    return found


def sandboxed(spec: dict[str, Any], command: list[str]) -> list[str]:
    """``command`` as the pod's container would run it: as its non-root user, with the root
    filesystem read-only except for the ``emptyDir`` volumes it mounts (empty tmpfs here)."""
    container = only_container(spec)
    security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    uid = int(security["runAsUser"])
    gid = int(security.get("runAsGroup", uid))
    assert security.get("runAsNonRoot") is True, security
    assert uid != 0, security
    assert security.get("readOnlyRootFilesystem") is True, security
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    writable = [
        mount["mountPath"]
        for mount in container.get("volumeMounts", [])
        if "emptyDir" in volumes[mount["name"]] and not mount.get("readOnly", False)
    ]
    sandbox = [bubblewrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for path in writable:
        sandbox += ["--tmpfs", path]
    # The image's own files (here: this checkout, its virtualenv and code) stay visible, read
    # only, even when the checkout lies under a path the pod mounts a volume on (a clone in /tmp).
    if any(CHECKOUT.is_relative_to(path) for path in writable):
        sandbox += ["--ro-bind", str(CHECKOUT), str(CHECKOUT)]
    # A user namespace, as rootless container engines use: inside, the process is the pod's
    # user and group, with no capabilities (whoever runs the test, root included).
    sandbox += ["--unshare-user", "--uid", str(uid), "--gid", str(gid), "--cap-drop", "ALL"]
    sandbox += ["--die-with-parent", "--chdir", "/", "--"]
    return [*sandbox, *command]


def image_environment() -> dict[str, str]:
    """The image's ENV (PATH becomes the test's virtualenv; the app runs from it, not /app),
    with no TMPDIR: the temporary directory is the filesystem's, as in the container."""
    env = {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/"}
    for name, arguments in dockerfile_instructions():
        if name == "ENV":
            for pair in arguments.split():
                key, _, value = pair.partition("=")
                if key not in {"PATH", "PYTHONPATH"}:
                    env[key] = value.strip('"')
    return env


def run_public_command(command: list[str], *, host: str, port: int) -> list[str]:
    """The image's command with its listener moved to ``host:port``."""
    moved = list(command)
    for option, value in (("--host", host), ("--port", str(port))):
        assert option in moved, f"the image's CMD sets no {option}: {command}"
        moved[moved.index(option) + 1] = value
    return moved


def workers(command: list[str], env: dict[str, str]) -> int:
    """How many workers ``bookshelf serve`` starts: --workers, else BOOKSHELF_WORKERS, else 1."""
    if "--workers" in command:
        return int(command[command.index("--workers") + 1])
    return int(env.get("BOOKSHELF_WORKERS", "1"))


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with throwaway_postgres_database("bookshelf_deploy") as url:
        yield url


@contextlib.contextmanager
def started(
    command: list[str], env: dict[str, str] | None, log: Path, **options: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in its own process group; SIGTERM to the group on exit, then SIGKILL.
    ``options``: more of Popen's (the user to run as)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **options,
        )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last: httpx.Response | None = None
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            last = httpx.get(url, timeout=2)
            if last.status_code == 200:
                return last
        time.sleep(0.2)
    answer = f"last answer {last.status_code}: {last.text}" if last is not None else "no answer"
    pytest.fail(
        f"{url} never answered 200 ({answer}; exit code {process.poll()}):\n"
        + log.read_text(errors="replace")[-3000:]
    )


WORKER = "bookshelf-mail-worker"


def run_worker_command(command: list[str], *, metrics_port: int) -> list[str]:
    """The worker's command with its metrics listener moved to ``metrics_port``."""
    moved = list(command)
    assert "--metrics-port" in moved, f"the worker serves no metrics: {command}"
    moved[moved.index("--metrics-port") + 1] = str(metrics_port)
    return moved


def wait_delivered(
    smtp: SmtpServer, recipient: str, worker: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and worker.poll() is None:
        if smtp.recorder.to(recipient):
            return
        time.sleep(0.2)
    pytest.fail(
        f"no mail to {recipient} (worker exit code {worker.poll()}):\n"
        + log.read_text(errors="replace")[-3000:]
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


def test_the_pod_starts_read_only_as_its_user_and_becomes_ready(
    database_url: str, smtp: SmtpServer, tmp_path: Path
) -> None:
    secret = {
        # No PgBouncer here (tests/deploy/test_pgbouncer.py runs the app behind it): the
        # pods and the migration Job both reach the database directly.
        "BOOKSHELF_DATABASE_URL": database_url,
        "DATABASE_DIRECT_URL": database_url,
        "BOOKSHELF_REDIS_URL": os.environ.get("BOOKSHELF_TEST_REDIS_URL", DEFAULT_REDIS_URL),
        "BOOKSHELF_JWT_SECRET": secrets.token_urlsafe(48),
        # The worker's relay: on this machine, so production accepts it without TLS.
        "BOOKSHELF_SMTP_URL": smtp.url,
    }
    job = pod_spec("Job")
    job_env = {**image_environment(), **container_environment(only_container(job), secret)}
    migrate = subprocess.run(
        sandboxed(job, only_container(job)["command"]),
        env=job_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    deployment = pod_spec("Deployment")
    container = only_container(deployment)
    env = {**image_environment(), **container_environment(container, secret)}
    public_port, admin_port = free_port(), free_port()
    env["BOOKSHELF_ADMIN_PORT"] = str(admin_port)
    command = run_public_command(
        container.get("command") or dockerfile_command(), host="127.0.0.1", port=public_port
    )
    assert workers(command, env) == 2, "the Deployment runs two workers per pod"
    public_host = env.get("BOOKSHELF_ALLOWED_HOSTS", "localhost").split(",")[0]
    log = tmp_path / "serve.log"
    with started(sandboxed(deployment, command), env, log) as process:
        ready = wait_ready(process, f"http://127.0.0.1:{admin_port}/health/ready", log)
        assert ready.json()["status"] == "ready"
        public = f"http://127.0.0.1:{public_port}"
        assert httpx.get(f"{public}/health/ready", timeout=5).status_code == 404
        books = httpx.get(f"{public}/api/v1/books", headers={"Host": public_host}, timeout=5)
        assert books.status_code == 200, books.text
        metrics = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=5)
        assert "bookshelf_http_requests_total" in metrics.text
        assert "Application startup complete" in log.read_text()
        # A registration queues a verification mail in the outbox ...
        recipient = f"container-{secrets.token_hex(4)}@example.org"
        registered = httpx.post(
            f"{public}/api/v1/auth/register",
            json={"email": recipient, "password": "a perfectly long passphrase"},
            headers={"Host": public_host},
            timeout=30,
        )
        assert registered.status_code == 202, registered.text

    # ... which the mail worker's pod, started under its own conditions, delivers.
    worker_spec = pod_spec("Deployment", WORKER)
    worker_container = only_container(worker_spec)
    worker_env = {**image_environment(), **container_environment(worker_container, secret)}
    metrics_port = free_port()
    worker_command = run_worker_command(worker_container["command"], metrics_port=metrics_port)
    worker_log = tmp_path / "worker.log"
    with started(sandboxed(worker_spec, worker_command), worker_env, worker_log) as worker:
        wait_delivered(smtp, recipient, worker, worker_log)
        [mail] = smtp.recorder.to(recipient)
        assert "https://" in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert "bookshelf_mail_sent_total 1.0" in scraped
    # (Stopping on SIGTERM is tests/mail/test_worker_process.py's: here the signal reaches
    # bubblewrap too, which takes its child down with it.)
