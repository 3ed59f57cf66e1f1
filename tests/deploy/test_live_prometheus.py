"""The shipped Prometheus configuration against the real thing: Debian's ``prometheus`` scrapes a
live ``bookshelf serve --workers 2`` (admin port) and a ``bookshelf worker`` on PostgreSQL,
with the shipped scrape configuration (targets and intervals rewritten for the test) and
rules; after some traffic, every rule has loaded and is healthy, and every recording rule and
every dashboard panel's query returns data through Prometheus' HTTP API.

Bounded in time: Prometheus and both Bookshelf processes only listen on 127.0.0.1, every wait
has a deadline, and everything is stopped on exit."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from bookshelf import __version__
from tests.deploy.manifests import DEPLOY, unavailable
from tests.servers import BOOKSHELF, JWT_SECRET, BookshelfServer, clean_environment, free_port

PROMETHEUS_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "bookshelf.json"
COMMIT = "feedc0ffee"
DEADLINE_SECONDS = 120.0


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def recording_rules() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "rules" / "recording.yml").read_text())
    return [rule["record"] for group in rules["groups"] for rule in group["rules"]]


def scrape_configuration(tmp_path: Path, app_port: int, worker_port: int) -> Path:
    """The shipped prometheus.yml with the live ports, second-long intervals and the rule
    files' absolute paths; nothing else changed."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    targets = {"bookshelf": app_port, "bookshelf-mail-worker": worker_port}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{targets.pop(job['job_name'])}"]}]
    assert targets == {}, "every job of the shipped configuration is rewritten"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def running_prometheus(config: Path, data: Path, log: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        unavailable("prometheus is not installed (Debian package prometheus)")
        raise AssertionError("unreachable")
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    with answering(process, f"http://127.0.0.1:{port}", "/-/ready", log) as url:
        yield url


@contextlib.contextmanager
def running_mail_worker(database_url: str, port: int, log: Path) -> Iterator[str]:
    env = clean_environment(
        database_url=database_url,
        environment="test",
        jwt_secret=JWT_SECRET,
        json_logs="true",
        mail_poll_interval_seconds="0.2",
    ) | {"BOOKSHELF_BUILD_COMMIT": COMMIT}
    command = [str(BOOKSHELF), "worker", "--metrics-host", "127.0.0.1", "--metrics-port"]
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*command, str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    with answering(process, f"http://127.0.0.1:{port}", "/health/live", log) as url:
        yield url


def wait_for(check: Any, what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def answering(process: subprocess.Popen[bytes], url: str, probe: str, log: Path) -> Iterator[str]:
    """``url`` once ``probe`` answers 200; the process is stopped on exit (killed if need be)."""
    try:
        wait_for(
            lambda: httpx.get(f"{url}{probe}", timeout=2).status_code == 200,
            f"{url}{probe}:\n{log.read_text()[-3000:]}",
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    """The instant query's result; an error from Prometheus fails the test with its message."""
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=10)
    body = answer.json()
    assert body["status"] == "success", f"{expression}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def drive_traffic(base_url: str) -> None:
    """Reads, writes (registrations, which enqueue mail), plain 404s and 422s, and sign-ins
    beyond the strict budget (429s, counted while the rate limiter's Redis is unreachable)."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for number in range(3):
            registration = client.post(
                "/api/v1/auth/register",
                json={"email": f"reader{number}@example.org", "password": "a long passphrase 9"},
            )
            assert registration.status_code == 202, registration.text
        for _ in range(10):
            assert client.get("/api/v1/books").status_code == 200
            assert client.get("/api/v1/books/not-a-uuid").status_code in (404, 422)
        statuses = {
            client.post(
                "/api/v1/auth/token",
                data={"username": "reader0@example.org", "password": "wrong password here"},
            ).status_code
            for _ in range(5)
        }
        assert 429 in statuses, statuses


def test_prometheus_loads_the_rules_and_every_recording_rule_and_panel_has_data(
    fresh_postgres_url: str, tmp_path: Path
) -> None:
    migrate = subprocess.run(
        [str(BOOKSHELF), "migrate"],
        env=clean_environment(database_url=fresh_postgres_url, environment="test"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    closed_redis_port = free_port()  # nothing listens there: the limiter's store fails
    app = BookshelfServer(
        fresh_postgres_url,
        tmp_path,
        workers=2,
        admin_port=str(free_port()),
        inprocess_worker="false",
        rate_limit_enabled="true",
        rate_limit_auth="3/minute",
        redis_url=f"redis://127.0.0.1:{closed_redis_port}/0",
        extra_env={"BOOKSHELF_BUILD_COMMIT": COMMIT},
    )
    try:
        app.wait_live()
        admin_port = int(app.admin_url.rsplit(":", 1)[1])
        worker_port = free_port()
        config = scrape_configuration(tmp_path, admin_port, worker_port)
        with (
            running_mail_worker(fresh_postgres_url, worker_port, tmp_path / "worker.log"),
            running_prometheus(config, tmp_path / "data", tmp_path / "prometheus.log") as prom,
        ):
            drive_traffic(app.base_url)
            wait_for(
                lambda: len(query(prom, "up == 1")) == 2,
                f"both targets up: {query(prom, 'up')}",
            )
            groups = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
            loaded = [rule for group in groups for rule in group["rules"]]
            assert len(loaded) == 49
            for rule in loaded:
                assert rule["health"] != "err", rule
            # Every recording rule answers once evaluated over the traffic just sent.
            for record in recording_rules():
                wait_for(lambda record=record: query(prom, record), f"data for {record}")
            missing = []
            for title, expression in dashboard_queries():
                with contextlib.suppress(AssertionError):
                    wait_for(lambda e=expression: query(prom, e), expression, timeout=15)
                    continue
                missing.append(f"{title}: {expression}")
            assert missing == []
            builds = query(prom, "bookshelf_build_info")
            assert {(b["metric"]["job"], b["metric"]["commit"]) for b in builds} == {
                ("bookshelf", COMMIT),
                ("bookshelf-mail-worker", COMMIT),
            }
            assert {b["metric"]["version"] for b in builds} == {__version__}
            roles = query(prom, 'count by (role) (process_resident_memory_bytes{job="bookshelf"})')
            assert {r["metric"]["role"]: r["value"][1] for r in roles} == {
                "supervisor": "1",
                "worker": "2",
            }
            sent = query(prom, "sum(bookshelf_mail_sent_total)")
            wait_for(
                lambda: float(query(prom, "sum(bookshelf_mail_sent_total)")[0]["value"][1]) >= 3,
                f"the worker's three deliveries scraped: {sent}",
            )
            # The alerts that must stay quiet with a healthy service and one still silent.
            firing = {
                alert["labels"]["alertname"]
                for alert in httpx.get(f"{prom}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
            }
            assert "BookshelfMailWorkerAbsent" not in firing
            assert "BookshelfApiAvailabilityBudgetBurnFast" not in firing
    finally:
        app.stop()
