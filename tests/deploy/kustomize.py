"""Render a kustomization offline, as ``kubectl kustomize`` would, for the features the
deployment uses and no others: ``resources`` (files and directories), strategic-merge
``patches`` (by kind and name), ``configMapGenerator`` (files, no name suffix), ``namespace``,
``labels`` (metadata only) and ``images``.

kustomize itself is not packaged for Debian nor on PyPI; a field this renderer does not know
fails the rendering instead of being ignored, so the overlays cannot quietly rely on one.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "configMapGenerator",
    "patches",
    "namespace",
    "labels",
    "images",
}
# Lists whose items are merged by their name (containers, env, ports, volumes, mounts…), as
# the Kubernetes strategic merge does; other lists are replaced.
MERGE_KEY = "name"


def render(directory: Path) -> list[dict[str, Any]]:
    """The resources the kustomization in ``directory`` produces."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KNOWN_FIELDS
    assert not unknown, f"{directory}: this renderer does not support {sorted(unknown)}"
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for generator in kustomization.get("configMapGenerator", []):
        resources.append(_generated_config_map(generator, directory))
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"{directory}: only patches from files: {patch}"
        for document in yaml.safe_load_all((directory / patch["path"]).read_text()):
            if document:
                _apply_patch(resources, document, directory)
    for item in kustomization.get("labels", []):
        assert set(item) == {"pairs"}, f"{directory}: labels on metadata only: {item}"
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(item["pairs"])
    for image in kustomization.get("images", []):
        for resource in resources:
            _set_image(resource, image)
    if "namespace" in kustomization:
        for resource in resources:
            resource["metadata"]["namespace"] = kustomization["namespace"]
    return resources


def _generated_config_map(generator: dict[str, Any], directory: Path) -> dict[str, Any]:
    assert set(generator) == {"name", "files", "options"}, f"{directory}: {generator}"
    assert generator["options"] == {"disableNameSuffixHash": True}, f"{directory}: {generator}"
    data = {}
    for entry in generator["files"]:
        key, _, file = entry.rpartition("=")
        path = (directory / file).resolve()
        assert path.is_relative_to(directory.resolve()), f"kustomize loads no {path}"
        data[key or path.name] = path.read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"]},
        "data": data,
    }


def _apply_patch(resources: list[dict[str, Any]], patch: dict[str, Any], where: Path) -> None:
    name = patch["metadata"]["name"]
    targets = [r for r in resources if r["kind"] == patch["kind"] and r["metadata"]["name"] == name]
    assert len(targets) == 1, f"{where}: the patch of {patch['kind']} {name} matches {targets}"
    merged = merge(targets[0], patch)
    targets[0].clear()
    targets[0].update(merged)


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge: maps merge key by key (``null`` deletes), lists of named maps merge by
    name, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        result = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return result
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        patches = {item[MERGE_KEY]: item for item in patch}
        known = {item[MERGE_KEY] for item in base}
        merged = [merge(item, patches.get(item[MERGE_KEY], item)) for item in base]
        return merged + [copy.deepcopy(item) for item in patch if item[MERGE_KEY] not in known]
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and MERGE_KEY in item for item in items)


def pod_templates(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod spec a workload runs (Deployment, Job), none for other kinds."""
    template = resource.get("spec", {}).get("template")
    return [template["spec"]] if template else []


def _set_image(resource: dict[str, Any], image: dict[str, str]) -> None:
    unknown = set(image) - {"name", "newName", "newTag"}
    assert not unknown, f"images: this renderer does not support {sorted(unknown)}"
    for spec in pod_templates(resource):
        for container in spec.get("initContainers", []) + spec["containers"]:
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                name = image.get("newName", name)
                tag = image.get("newTag", tag)
                container["image"] = f"{name}:{tag}" if tag else name
