"""Reading the deployment files the way the tests need them: Kubernetes resources by kind,
the container a pod runs, the environment it gets, and the Dockerfile's command."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"


def unavailable(reason: str) -> None:
    """Skip, except under CI=true, where the deployment checks must run (.ci/run installs
    what they need)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI=true: the deployment checks must run)")
    pytest.skip(reason)


KUSTOMIZATION = "kustomization.yaml"


def k8s_files() -> list[Path]:
    """The base's manifests (its kustomization.yaml is kustomize's, not a Kubernetes object)."""
    return sorted(path for path in K8S.glob("*.yaml") if path.name != KUSTOMIZATION)


def k8s_resources() -> list[dict[str, Any]]:
    return [
        document
        for path in k8s_files()
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def resource(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one resource of ``kind`` in deploy/k8s/ (named ``name`` when there are several:
    the app's Deployment is ``bookshelf``, the mail worker's ``bookshelf-mail-worker``)."""
    found = [item for item in k8s_resources() if item["kind"] == kind]
    if len(found) > 1:
        found = [item for item in found if item["metadata"]["name"] == (name or "bookshelf")]
    elif name is not None:
        found = [item for item in found if item["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {K8S}, found {len(found)}"
    return found[0]


def pod_spec(kind: str, name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = resource(kind, name)["spec"]["template"]["spec"]
    return spec


def only_container(spec: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = spec["containers"]
    assert len(containers) == 1, "one container per pod"
    return containers[0]


def container_environment(container: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """What the container's environment holds: its ``envFrom`` ConfigMap and Secret (the Secret's
    values are the caller's, for the keys the example Secret names), then its ``env``."""
    example = resource("Secret")
    missing = set(example["stringData"]) - set(secret)
    assert not missing, f"no test value for the Secret's {sorted(missing)}"
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == resource("ConfigMap")["metadata"]["name"]
            env.update({name: str(value) for name, value in resource("ConfigMap")["data"].items()})
        if "secretRef" in source:
            assert source["secretRef"]["name"] == example["metadata"]["name"]
            env.update(secret)
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "secretKeyRef" in item.get("valueFrom", {}):
            reference = item["valueFrom"]["secretKeyRef"]
            assert reference["name"] == example["metadata"]["name"], reference
            assert reference["key"] in example["stringData"], reference
            env[item["name"]] = secret[reference["key"]]
    return env


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def dockerfile_command() -> list[str]:
    """The image's CMD (exec form)."""
    commands = [arguments for name, arguments in dockerfile_instructions() if name == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    command: list[str] = json.loads(commands[-1])
    return command
