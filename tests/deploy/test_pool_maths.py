"""The connection budget, computed once from the deployment files and held to what
docs/deploying.md says ("Connections"): every app and worker connection fits in PgBouncer's
client limit, and PgBouncer's server connections (plus the migration Job's) fit in
PostgreSQL's max_connections, in every kustomize rendering and in compose."""

from __future__ import annotations

import configparser
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bookshelf.config import Settings
from tests.deploy.kustomize import render
from tests.deploy.manifests import COMPOSE, K8S, ROOT
from tests.deploy.test_overlays import RENDERINGS, named

DOCS = ROOT / "docs" / "deploying.md"
PGBOUNCER_INI = K8S / "pgbouncer.ini"
# PostgreSQL's default max_connections (100) less its superuser_reserved_connections (3).
POSTGRES_CONNECTIONS = 97
# Each app worker process checks readiness on a connection of its own.
READINESS_CONNECTIONS = 1
MIGRATION_CONNECTIONS = 1


def pgbouncer_settings(text: str) -> dict[str, str]:
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(text)
    return dict(parser["pgbouncer"])


def surge(deployment: dict[str, Any], replicas: int) -> int:
    """Extra pods during a rolling update: maxSurge (25% by default), rounded up."""
    value = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(value, str):
        return math.ceil(replicas * int(value.rstrip("%")) / 100)
    return int(value)


def per_worker(environment: dict[str, Any]) -> int:
    defaults = Settings.model_fields
    pool = int(
        environment.get("BOOKSHELF_DATABASE_POOL_SIZE", defaults["database_pool_size"].default)
    )
    overflow = int(
        environment.get(
            "BOOKSHELF_DATABASE_MAX_OVERFLOW", defaults["database_max_overflow"].default
        )
    )
    return pool + overflow


def kubernetes_budget(resources: list[dict[str, Any]]) -> dict[str, int]:
    config = {k: str(v) for k, v in named(resources, "ConfigMap", "bookshelf")["data"].items()}
    app = named(resources, "Deployment", "bookshelf")
    [app_container] = app["spec"]["template"]["spec"]["containers"]
    app_env = config | {e["name"]: e["value"] for e in app_container["env"] if "value" in e}
    most_app_pods = named(resources, "HorizontalPodAutoscaler", "bookshelf")["spec"]["maxReplicas"]
    most_app_pods += surge(app, most_app_pods)
    worker = named(resources, "Deployment", "bookshelf-mail-worker")
    most_worker_pods = worker["spec"]["replicas"] + surge(worker, worker["spec"]["replicas"])
    bouncer = named(resources, "Deployment", "bookshelf-pgbouncer")
    most_bouncers = bouncer["spec"]["replicas"] + surge(bouncer, bouncer["spec"]["replicas"])
    ini = pgbouncer_settings(
        named(resources, "ConfigMap", "bookshelf-pgbouncer")["data"]["pgbouncer.ini"]
    )
    app_per_pod = int(app_env["BOOKSHELF_WORKERS"]) * (per_worker(app_env) + READINESS_CONNECTIONS)
    clients = most_app_pods * app_per_pod + most_worker_pods * per_worker(config)
    return {
        "app_per_pod": app_per_pod,
        "app_pods": most_app_pods,
        "worker_pods": most_worker_pods,
        "pgbouncer_clients": clients,
        "pgbouncer_max_client_conn": int(ini["max_client_conn"]),
        "pgbouncer_instances": most_bouncers,
        "postgresql_connections": most_bouncers * int(ini["max_db_connections"])
        + MIGRATION_CONNECTIONS,
        "postgresql_max_connections": POSTGRES_CONNECTIONS,
    }


def compose_budget() -> dict[str, int]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    ini = pgbouncer_settings(PGBOUNCER_INI.read_text())
    app_env = services["app"]["environment"]
    app = int(app_env["BOOKSHELF_WORKERS"]) * (per_worker(app_env) + READINESS_CONNECTIONS)
    return {
        "pgbouncer_clients": app + per_worker(services["worker"]["environment"]),
        "pgbouncer_max_client_conn": int(ini["max_client_conn"]),
        "postgresql_connections": int(ini["max_db_connections"]) + MIGRATION_CONNECTIONS,
        "postgresql_max_connections": POSTGRES_CONNECTIONS,
    }


def documented(table: str) -> dict[str, int]:
    """The rows ``| `key` | … | number |`` of the docs' table named ``table``."""
    text = DOCS.read_text()
    section = text.split(f"<!-- {table} -->", 1)[1].split("\n\n", 1)[0]
    return {
        key: int(number)
        for key, number in re.findall(r"^\| `(\w+)` \|.*\| (\d+) \|$", section, re.M)
    }


def assert_fits(budget: dict[str, int]) -> None:
    assert budget["pgbouncer_clients"] <= budget["pgbouncer_max_client_conn"], budget
    assert budget["postgresql_connections"] <= budget["postgresql_max_connections"], budget


@pytest.mark.parametrize("rendering", sorted(RENDERINGS))
def test_every_rendering_fits_pgbouncer_and_postgresql(rendering: str) -> None:
    assert_fits(kubernetes_budget(render(RENDERINGS[rendering])))


def test_compose_fits_pgbouncer_and_postgresql() -> None:
    assert_fits(compose_budget())


def test_the_docs_state_the_budget_the_files_make() -> None:
    assert documented("connections-kubernetes") == kubernetes_budget(render(K8S))
    assert documented("connections-compose") == compose_budget()


def test_pgbouncer_pools_transactions_everywhere() -> None:
    assert pgbouncer_settings(PGBOUNCER_INI.read_text())["pool_mode"] == "transaction"
    assert (
        named(render(K8S), "ConfigMap", "bookshelf")["data"]["BOOKSHELF_DATABASE_STATEMENT_CACHE"]
        == "false"
    )
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["configs"]["pgbouncer-ini"]["file"] == "./k8s/pgbouncer.ini"
    assert Path(COMPOSE.parent, compose["configs"]["pgbouncer-ini"]["file"]).resolve() == (
        PGBOUNCER_INI
    )
