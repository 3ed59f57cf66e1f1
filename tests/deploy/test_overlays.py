"""The kustomize base and its overlays, rendered offline (``tests/deploy/kustomize.py``) and
checked like the base: the Kubernetes schemas, and what every rendering must keep (no
replicas beside an HPA, a disruption budget that lets a drain proceed and a network policy for
every workload, the release's version, OTLP egress exactly where tracing is on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bookshelf import __version__
from bookshelf.config import Settings
from tests.deploy.kustomize import merge, pod_templates, render
from tests.deploy.manifests import K8S, k8s_files
from tests.deploy.test_files import run, tool

OVERLAYS = K8S / "overlays"
RENDERINGS = {"base": K8S} | {path.name: path for path in sorted(OVERLAYS.iterdir())}
OTLP_PORTS = {4317, 4318}


@pytest.fixture(params=sorted(RENDERINGS), scope="module")
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(RENDERINGS[request.param])


def named(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def test_both_overlays_exist() -> None:
    assert set(RENDERINGS) == {"base", "development", "production"}


def test_the_base_lists_every_manifest_but_the_example_secrets() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert set(listed) == {p.name for p in k8s_files()} - {"secret.example.yaml"}


def test_every_rendering_matches_the_kubernetes_schemas(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(rendered))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", path)
    assert result.returncode == 0, result.stdout + result.stderr


def workload_replicas(resources: list[dict[str, Any]], deployment: dict[str, Any]) -> int:
    """The fewest pods a Deployment runs: its HPA's minimum, else its replicas."""
    scalers = [
        r["spec"]
        for r in resources
        if r["kind"] == "HorizontalPodAutoscaler"
        and r["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ]
    if scalers:
        assert "replicas" not in deployment["spec"], "replicas beside an HPA"
        return int(scalers[0]["minReplicas"])
    return int(deployment["spec"].get("replicas", 1))


def test_every_deployment_has_a_budget_that_lets_a_drain_proceed_and_a_policy(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = [r for r in rendered if r["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "bookshelf",
        "bookshelf-mail-worker",
        "bookshelf-pgbouncer",
    }
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        fewest = workload_replicas(rendered, deployment)
        [budget] = [
            r["spec"]
            for r in rendered
            if r["kind"] == "PodDisruptionBudget" and r["spec"]["selector"]["matchLabels"] == labels
        ]
        allowed_down = (
            fewest - budget["minAvailable"]
            if "minAvailable" in budget
            else budget["maxUnavailable"]
        )
        assert allowed_down >= 1, f"{deployment['metadata']['name']}: a drain would block"
        policies = [
            r["spec"]
            for r in rendered
            if r["kind"] == "NetworkPolicy" and r["spec"]["podSelector"]["matchLabels"] == labels
        ]
        assert any(set(p["policyTypes"]) == {"Ingress", "Egress"} for p in policies), labels


def app_environment(resources: list[dict[str, Any]]) -> dict[str, str]:
    return {k: str(v) for k, v in named(resources, "ConfigMap", "bookshelf")["data"].items()}


def egress_ports(resources: list[dict[str, Any]], labels: dict[str, str]) -> set[int | str]:
    return {
        port["port"]
        for r in resources
        if r["kind"] == "NetworkPolicy" and r["spec"]["podSelector"]["matchLabels"] == labels
        for rule in r["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }


def test_otlp_egress_is_open_exactly_where_tracing_is_on(rendered: list[dict[str, Any]]) -> None:
    environment = app_environment(rendered)
    app = named(rendered, "Deployment", "bookshelf")
    ports = egress_ports(rendered, app["spec"]["template"]["metadata"]["labels"])
    if environment.get("BOOKSHELF_TRACING") == "true":
        endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.port in ports, (endpoint, ports)
        assert environment.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf") == "http/protobuf"
    else:
        assert not ports & OTLP_PORTS, "OTLP egress without tracing"
    # The database goes through PgBouncer: no pod but PgBouncer reaches PostgreSQL's port.
    assert 5432 not in ports
    assert 6432 in ports


def test_every_setting_of_every_rendering_exists(rendered: list[dict[str, Any]]) -> None:
    known = {f"BOOKSHELF_{name.upper()}" for name in Settings.model_fields}
    names = set(app_environment(rendered))
    assert {name for name in names if name.startswith("BOOKSHELF_")} <= known
    assert {name for name in names if not name.startswith("BOOKSHELF_")} <= {
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    }


def test_every_rendering_runs_the_release_and_labels_it(rendered: list[dict[str, Any]]) -> None:
    from_base = {(r["kind"], r["metadata"]["name"]) for r in render(K8S)}
    for resource in rendered:
        if (resource["kind"], resource["metadata"]["name"]) in from_base:
            labels = resource["metadata"]["labels"]
            assert labels["app.kubernetes.io/version"] == __version__, resource["metadata"]
        for spec in pod_templates(resource):
            for container in spec["containers"]:
                if "bookshelf" in container["image"].split(":")[0]:
                    assert container["image"].endswith(f"/bookshelf:{__version__}") or (
                        container["image"] == f"bookshelf:{__version__}"
                    )


def test_the_production_overlay_traces_a_sample_and_development_logs_debug() -> None:
    production = app_environment(render(RENDERINGS["production"]))
    assert production["BOOKSHELF_TRACING"] == "true"
    assert 0 < float(production["OTEL_TRACES_SAMPLER_ARG"]) <= 1
    development = render(RENDERINGS["development"])
    assert app_environment(development)["BOOKSHELF_LOG_LEVEL"] == "DEBUG"
    assert {r["metadata"]["namespace"] for r in development} == {"bookshelf-dev"}


# --- the renderer itself ---------------------------------------------------------------------


def test_the_strategic_merge_merges_named_lists_and_deletes_nulls() -> None:
    base = {"a": 1, "b": {"c": 2}, "items": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]}
    patch = {"a": None, "b": {"d": 3}, "items": [{"name": "y", "v": 5}, {"name": "z"}]}
    assert merge(base, patch) == {
        "b": {"c": 2, "d": 3},
        "items": [{"name": "x", "v": 1}, {"name": "y", "v": 5}, {"name": "z"}],
    }


def test_the_renderer_refuses_a_field_it_does_not_know(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nreplicas: [{name: x, count: 1}]\n")
    with pytest.raises(AssertionError, match="replicas"):
        render(tmp_path)


def test_a_broken_overlay_fails_the_schema_check(tmp_path: Path) -> None:
    resources = render(RENDERINGS["development"])
    named(resources, "HorizontalPodAutoscaler", "bookshelf")["spec"]["maxReplica"] = 2
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(resources))
    assert run(tool("kubernetes-validate"), "--strict", "--quiet", path).returncode != 0
