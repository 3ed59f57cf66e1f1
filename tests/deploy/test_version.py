"""One source for the version: ``bookshelf.__version__``. The package metadata reads it, and
every other place that names the release (the kustomize base's label and image tag, the image
tags written in the docs) is held to it here; the manifests' own tags, the Job's name, compose
and the Dockerfile are in test_files.py."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from bookshelf import __version__
from tests.deploy.manifests import K8S, ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "docs" / "deploying.md"]


def test_the_package_metadata_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/bookshelf/__init__.py"
    # The installed distribution (dev.py installs the project) says the same.
    assert version("bookshelf") == __version__


def test_the_kustomize_base_labels_and_tags_the_release() -> None:
    base = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    [labels] = base["labels"]
    assert labels["pairs"]["app.kubernetes.io/version"] == __version__
    [image] = base["images"]
    assert (image["name"], image["newTag"]) == ("bookshelf", __version__)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_the_docs_name_the_release(document: Path) -> None:
    text = document.read_text()
    tags = re.findall(r"bookshelf:(\d+\.\d+\.\d+)", text)
    versions = re.findall(r"VERSION=(\d+\.\d+\.\d+)", text)
    assert set(tags + versions) <= {__version__}, (tags, versions)


def test_the_deploying_page_states_the_current_version() -> None:
    text = (ROOT / "docs" / "deploying.md").read_text()
    assert f"currently **{__version__}**" in text
    assert f"bookshelf:{__version__}" in text
