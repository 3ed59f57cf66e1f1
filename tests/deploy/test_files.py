"""The deployment files, checked offline: hadolint on the Dockerfile, the Kubernetes schemas on
the manifests, and the promises the files make to each other and to the README (ports,
memory, connections, release names, pinned images, no secrets)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bookshelf import __version__
from bookshelf.config import ConfigurationError, Settings, load_settings
from tests.deploy.manifests import (
    COMPOSE,
    DOCKERFILE,
    ROOT,
    container_environment,
    dockerfile_command,
    dockerfile_instructions,
    k8s_files,
    only_container,
    pod_spec,
    resource,
    unavailable,
)

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
# The memory budget per pod, in MiB: workers x (base + concurrent hashes x Argon2id's memory)
# + the supervisor process.
WORKER_BASE_MIB = 160
HASH_MIB = 64
SUPERVISOR_MIB = 40
# PostgreSQL's default max_connections (100) less its superuser_reserved_connections (3).
POSTGRES_CONNECTIONS = 97
SECRET_VALUES = {
    "BOOKSHELF_DATABASE_URL": "postgresql://bookshelf:pw@bookshelf-pgbouncer:6432/bookshelf",
    "DATABASE_DIRECT_URL": "postgresql://bookshelf:pw@postgres/bookshelf",
    "BOOKSHELF_REDIS_URL": "redis://redis:6379/0",
    "BOOKSHELF_JWT_SECRET": "x" * 48,
    "BOOKSHELF_SMTP_URL": "smtp://bookshelf:pw@mail.internal:587?starttls=require",
}


def tool(name: str) -> str:
    """A command installed with the dev dependencies (in the test's virtualenv)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed (it is in the dev dependency group)")
        raise AssertionError("unreachable")
    return found


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=60, check=False
    )


def mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def deployment_environment() -> dict[str, str]:
    return container_environment(only_container(pod_spec("Deployment")), SECRET_VALUES)


# --- linters -----------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install flask\n")
    result = run(tool("hadolint"), bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the latest tag


def test_the_kubernetes_manifests_match_the_schemas() -> None:
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", *k8s_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_validator_rejects_a_misspelt_field(tmp_path: Path) -> None:
    deployment = yaml.safe_load((ROOT / "deploy/k8s/deployment.yaml").read_text())
    deployment["spec"]["strateggy"] = deployment["spec"].pop("strategy")
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", path)
    assert result.returncode != 0
    assert "strateggy" in result.stdout + result.stderr


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_unprivileged_without_a_token_and_with_resources(kind: str) -> None:
    spec = pod_spec(kind)
    container = only_container(spec)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    resources = container["resources"]
    assert mebibytes(resources["requests"]["memory"]) <= mebibytes(resources["limits"]["memory"])


def test_the_memory_limit_covers_two_workers_hashing_passwords() -> None:
    container = only_container(pod_spec("Deployment"))
    env = deployment_environment()
    workers = int(env["BOOKSHELF_WORKERS"])
    concurrency = int(env["BOOKSHELF_PASSWORD_HASH_CONCURRENCY"])
    budget = workers * (WORKER_BASE_MIB + concurrency * HASH_MIB) + SUPERVISOR_MIB
    assert (workers, concurrency, budget) == (2, 2, 616)
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert container["resources"]["requests"]["memory"] == "512Mi"
    assert budget < mebibytes(container["resources"]["limits"]["memory"])


def test_every_setting_in_the_manifests_exists() -> None:
    known = {f"BOOKSHELF_{name.upper()}" for name in Settings.model_fields}
    names = set(deployment_environment())
    assert {name for name in names if name.startswith("BOOKSHELF_")} <= known
    # The Secret's one other key, for the migration Job (not a setting, so not prefixed).
    assert {name for name in names if not name.startswith("BOOKSHELF_")} == {"DATABASE_DIRECT_URL"}


def test_probes_and_scrapes_use_the_admin_port_which_the_service_does_not_expose() -> None:
    template = resource("Deployment")["spec"]["template"]
    container = only_container(template["spec"])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    admin_port = int(deployment_environment()["BOOKSHELF_ADMIN_PORT"])
    assert ports == {"http": 8000, "admin": admin_port}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "admin", probe
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(admin_port)
    assert annotations["prometheus.io/path"] == Settings().metrics_path
    service_ports = resource("Service")["spec"]["ports"]
    assert [port["targetPort"] for port in service_ports] == ["http"]


def test_pods_are_spread_and_covered_by_a_disruption_budget_and_a_network_policy() -> None:
    deployment = resource("Deployment")["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    spread = deployment["template"]["spec"]["topologySpreadConstraints"]
    assert {item["topologyKey"] for item in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert all(item["labelSelector"]["matchLabels"] == labels for item in spread)
    budget = resource("PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"] == labels
    assert "replicas" not in deployment, "the HPA sets the count"
    assert budget["minAvailable"] < resource("HorizontalPodAutoscaler")["spec"]["minReplicas"]
    policy = resource("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == labels
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    allowed = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
    assert allowed == {"http", "admin"}


def test_images_and_the_migration_job_are_named_for_the_release() -> None:
    image = f"bookshelf:{__version__}"
    for kind in ("Deployment", "Job"):
        assert only_container(pod_spec(kind))["image"] == image, kind
    job = resource("Job")
    assert job["metadata"]["name"] == "bookshelf-migrate-" + __version__.replace(".", "-")
    assert only_container(pod_spec("Job"))["command"][-1] == "migrate"
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    assert compose["app"]["image"] == compose["migrate"]["image"] == image
    arguments = [arguments for name, arguments in dockerfile_instructions() if name == "ARG"]
    assert f"VERSION={__version__}" in arguments


# --- compose -------------------------------------------------------------------------------


def interpolated_or_free_of_secrets(name: str, value: Any) -> bool:
    """A password, secret or URL credential must come from the environment (``${…:?…}``)."""
    text = str(value)
    credential = re.search(r"://[^/@:]+:([^@]+)@", text)
    if credential:
        return credential.group(1).startswith("${")
    if re.search(r"PASSWORD$|SECRET", name):
        return text.startswith("${") and ":?" in text
    return True


def test_compose_pins_images_builds_the_app_and_writes_down_no_secret() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        _, _, tag = service["image"].partition(":")
        # 15.19-trixie, v1.24.1-p1: a release, never latest or a floating major.
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: {service['image']} is not a pinned version"
        for variable, value in (service.get("environment") or {}).items():
            assert interpolated_or_free_of_secrets(variable, value), f"{name}: {variable}"
    assert services["app"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["app"]["read_only"] is True
    assert "8000:8000" in services["app"]["ports"]
    assert not any("9000" in port for port in services["app"]["ports"])


def compose_environment(
    service: str, given: dict[str, str], document: dict[str, Any] | None = None
) -> dict[str, str]:
    """A compose service's environment as compose interpolates it from the operator's
    variables (``given``): ``${X:-default}`` falls back, ``${X:?message}`` must be given.
    ``document``: the compose file (compose.yaml unless given, e.g. merged with an override)."""

    def interpolate(match: re.Match[str]) -> str:
        name, operator, fallback = match.groups()
        if given.get(name):
            return given[name]
        assert operator != "?", f"compose refuses to start without {name}"
        return fallback or ""

    document = document or yaml.safe_load(COMPOSE.read_text())
    environment = document["services"][service]["environment"]
    pattern = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")
    return {name: pattern.sub(interpolate, str(value)) for name, value in environment.items()}


COMPOSE_VARIABLES = {
    "POSTGRES_PASSWORD": "pw",
    "BOOKSHELF_JWT_SECRET": "x" * 48,
    "BOOKSHELF_PUBLIC_URL": "https://books.example.org",
    "BOOKSHELF_SMTP_URL": "smtps://bookshelf:pw@mail.example.org",
}


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("service", ["migrate", "app", "worker"])
def test_compose_runs_production_settings_that_production_accepts(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    for name, value in compose_environment(service, COMPOSE_VARIABLES).items():
        monkeypatch.setenv(name, value)
    assert load_settings().environment == "production"
    # Without a relay the start is refused, and the line names the way out.
    monkeypatch.setenv("BOOKSHELF_SMTP_URL", "")
    with pytest.raises(ConfigurationError, match="BOOKSHELF_MAIL_TO_LOG_UNSAFE=true"):
        load_settings()


# --- Dockerfile ----------------------------------------------------------------------------


def base_python_version() -> tuple[int, int]:
    bases = [
        arguments.split()[0] for name, arguments in dockerfile_instructions() if name == "FROM"
    ]
    versions = {re.fullmatch(r"python:3\.(\d+)-slim-trixie", base) for base in bases}
    assert None not in versions, f"every stage on python:3.x-slim-trixie: {bases}"
    (minor,) = {int(match.group(1)) for match in versions if match}
    return 3, minor


def test_the_image_is_byte_compiled_labelled_and_takes_workers_from_the_environment() -> None:
    assert base_python_version() >= (3, 14)
    instructions = dockerfile_instructions()
    runs = " ".join(arguments for name, arguments in instructions if name == "RUN")
    assert "compileall" in runs
    labels = " ".join(arguments for name, arguments in instructions if name == "LABEL")
    for key in ("title", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert "--workers" not in dockerfile_command()
    environment = " ".join(arguments for name, arguments in instructions if name == "ENV")
    assert "BOOKSHELF_WORKERS=" in environment
    assert ("USER", "10001:10001") in instructions


def test_dockerignore_sends_only_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    included = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    copied = {
        arguments.split()[0].rstrip("/")
        for name, arguments in dockerfile_instructions()
        if name == "COPY" and not arguments.startswith("--from")
    }
    assert copied == included


# --- CI workflow ---------------------------------------------------------------------------


def test_the_ci_workflow_is_least_privilege_current_and_tests_old_and_new_python() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    versions = job["strategy"]["matrix"]["python-version"]
    assert versions[0] == "3.11"
    newest = "{}.{}".format(*base_python_version())
    assert newest in versions, "CI tests the image's Python"
    uses = [step["uses"] for step in job["steps"] if "uses" in step]
    assert "actions/checkout@v6" in uses
    assert "actions/setup-python@v6" in uses


# --- the mail worker ---------------------------------------------------------------------------

WORKER = "bookshelf-mail-worker"


def test_the_mail_worker_runs_as_its_own_unprivileged_deployment() -> None:
    spec = pod_spec("Deployment", WORKER)
    container = only_container(spec)
    assert container["command"][:4] == ["python", "-m", "bookshelf", "worker"]
    assert container["image"] == f"bookshelf:{__version__}"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Its own labels: the app's Service, budget and network policy do not select it.
    labels = resource("Deployment", WORKER)["spec"]["template"]["metadata"]["labels"]
    assert labels != resource("Deployment")["spec"]["template"]["metadata"]["labels"]
    # SIGTERM finishes the message in hand: the grace period outlasts one whole send.
    environment = container_environment(container, SECRET_VALUES)
    assert spec["terminationGracePeriodSeconds"] > Settings().smtp_send_timeout_seconds
    assert environment["BOOKSHELF_INPROCESS_WORKER"] == "false"
    assert Settings(smtp_url=environment["BOOKSHELF_SMTP_URL"]).smtp_url is not None  # type: ignore[arg-type]
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    assert compose["worker"]["command"][:4] == ["python", "-m", "bookshelf", "worker"]
    # Prometheus scrapes the worker where compose serves its metrics.
    metrics_port = compose["worker"]["command"][
        compose["worker"]["command"].index("--metrics-port") + 1
    ]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]
    }
    assert targets["bookshelf-mail-worker"] == [f"worker:{metrics_port}"]
    assert compose["worker"]["image"] == compose["app"]["image"]
    grace = re.fullmatch(r"(\d+)s", compose["worker"]["stop_grace_period"])
    assert grace is not None
    assert int(grace.group(1)) > Settings().smtp_send_timeout_seconds


def test_the_mail_workers_liveness_follows_its_delivery_loop() -> None:
    """Not /metrics: prometheus_client's thread would answer it while the loop hangs."""
    container = only_container(pod_spec("Deployment", WORKER))
    assert container["command"][-2:] == ["--metrics-port", "9000"]
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health/live", "port": "metrics"}, probe


def test_the_image_reports_the_commit_it_was_built_from() -> None:
    # bookshelf_build_info{commit} comes from BOOKSHELF_BUILD_COMMIT: the image sets it from the
    # build's REVISION argument, the one its OCI revision label carries.
    text = DOCKERFILE.read_text()
    assert "ARG REVISION=unknown" in text
    assert "BOOKSHELF_BUILD_COMMIT=${REVISION}" in text
    assert 'org.opencontainers.image.revision="${REVISION}"' in text


def test_compose_replica_profile_streams_from_the_primary_and_is_optional() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    replica = services["postgres-replica"]
    assert replica["profiles"] == ["replica"]
    assert replica["image"] == services["postgres"]["image"]
    script = "\n".join(replica["command"])
    assert "pg_basebackup -h postgres" in script
    assert " -R " in script
    # The primary lets it stream; the app neither waits for it nor needs it.
    init = [volume for volume in services["postgres"]["volumes"] if "initdb.d" in volume]
    [mounted] = init
    assert (COMPOSE.parent / mounted.split(":")[0]).read_text().count("replication") >= 1
    for service in ("app", "worker", "migrate"):
        assert "postgres-replica" not in (services[service].get("depends_on") or {})
    assert compose_environment("app", COMPOSE_VARIABLES)["BOOKSHELF_DATABASE_REPLICA_URLS"] == ""
