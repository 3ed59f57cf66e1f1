"""The documentation a newcomer reads: a short README that gives the commands CI runs, links
that lead somewhere, one version everywhere, and the license and changelog the package claims."""

from __future__ import annotations

import json
import re
import tomllib
from enum import Enum
from pathlib import Path

import pytest
from pydantic import SecretStr

from bookshelf import __version__
from bookshelf.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# Pages other work in progress writes; the README and the docs may link to them already.
PAGES_WRITTEN_ELSEWHERE = {"operating.md", "deploying.md", "cli.md", "replicas.md"}
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def documents() -> list[Path]:
    """Every Markdown file a reader is sent to."""
    return [
        README,
        ROOT / "ARCHITECTURE.md",
        ROOT / "CHANGELOG.md",
        ROOT / "clients" / "python" / "README.md",
        *sorted(DOCS.glob("*.md")),
    ]


def prose(document: Path) -> str:
    """The document without its code blocks (a link there is an example, not a link)."""
    return FENCED_BLOCK.sub("", document.read_text(encoding="utf-8"))


def anchor(heading: str) -> str:
    """The fragment a heading gets on GitHub: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", prose(document), re.MULTILINE)
    return {anchor(heading) for heading in headings}


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move detail into docs/"


def test_the_readme_gives_the_two_commands_and_ci_runs_its_test_command() -> None:
    quick_start = README.read_text(encoding="utf-8").split("\n## Quick start\n", 1)[1]
    block = quick_start.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert [command for command in commands if command] == [
        "python3 dev.py serve",
        "python3 dev.py test",
    ]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "python3 dev.py test" in ci, ".ci/run must run the README's test command as given"


@pytest.mark.parametrize("document", documents(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(document: Path) -> None:
    broken = []
    for target in MARKDOWN_LINK.findall(prose(document)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not ours to check offline
            continue
        path_part, _, fragment = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            if linked.parent == DOCS and linked.name in PAGES_WRITTEN_ELSEWHERE:
                continue
            broken.append(target)
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(target)
    assert broken == [], f"{document.relative_to(ROOT)}: links that lead nowhere"


def test_the_anchor_rule_matches_githubs() -> None:
    assert anchor("Tasks (`dev.py`)") == "tasks-devpy"
    assert anchor("The web app's session and forms") == "the-web-apps-session-and-forms"
    assert anchor("Bulk export and import (NDJSON)") == "bulk-export-and-import-ndjson"


def test_every_page_of_docs_is_reachable_from_the_readme() -> None:
    linked = {Path(target).name for target in MARKDOWN_LINK.findall(prose(README))}
    pages = {page.name for page in DOCS.glob("*.md")}
    assert sorted(pages - linked) == []
    assert linked >= PAGES_WRITTEN_ELSEWHERE


def test_every_image_tag_in_the_documentation_is_the_packages_version() -> None:
    """The version has one source, the package: a release cannot leave an old tag in the docs."""
    for document in documents():
        text = document.read_text(encoding="utf-8")
        tags = set(re.findall(r"\bbookshelf:(\d+\.\d+\.\d+)\b", text))
        assert tags <= {__version__}, f"{document.relative_to(ROOT)} names bookshelf:{tags}"


def test_the_license_is_the_mit_license_the_package_metadata_claims() -> None:
    metadata = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert metadata["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Copyright (c) " in text
    assert "Bookshelf contributors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text


def test_the_changelog_has_the_current_release_and_the_contracts_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert releases[0] == "Unreleased"
    assert releases[1] == __version__, "the newest release is the package's version"
    contract = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))
    assert f"## [{contract['info']['version']}]" in changelog
    # Every release has a date, taken from the repository's history (YYYY-MM-DD).
    dated = re.findall(r"^## \[(\d[^\]]*)\] - (\d{4}-\d{2}-\d{2})$", changelog, re.MULTILINE)
    assert [version for version, _ in dated] == releases[1:]


def _documented(value: object) -> str:
    """A setting's default as the configuration table writes it."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_configuration_tables_defaults_are_the_settings_defaults() -> None:
    """The defaults are written once, in docs/configuration.md, and held to the code here; the
    rows whose default is a rule ("on in production") rather than a value are not compared."""
    table = (DOCS / "configuration.md").read_text(encoding="utf-8").split("\n## Settings\n")[1]
    compared = 0
    for row in (line for line in table.splitlines() if line.startswith("| `")):
        cells = row.split("|")
        names = re.findall(r"`BOOKSHELF_([A-Z0-9_]+)`", cells[1])
        written = re.findall(r"`([^`]*)`", cells[2])
        if len(written) != len(names):
            continue
        for name, value in zip(names, written, strict=True):
            default = Settings.model_fields[name.lower()].get_default(call_default_factory=True)
            assert value == _documented(default), f"BOOKSHELF_{name}"
            compared += 1
    assert compared >= 55


MENTIONED_DEFAULT = re.compile(r"`BOOKSHELF_([A-Z0-9_]+)` \((\d[\d,]*(?:\.\d+)?)( s| ms)?[,;)]")


def test_a_default_quoted_beside_a_setting_is_its_default() -> None:
    """Prose that names a setting with its default in brackets ("`BOOKSHELF_SEARCH_WAIT_SECONDS`
    (1 s)") quotes the code's value, in every document."""
    quoted = 0
    for document in documents():
        for name, number, unit in MENTIONED_DEFAULT.findall(prose(document)):
            field = Settings.model_fields.get(name.lower())
            if field is None:
                continue
            value = float(number.replace(",", ""))
            if unit == " s" and name.endswith("_MS"):
                value *= 1000
            default = field.get_default(call_default_factory=True)
            assert value == float(default), f"{document.relative_to(ROOT)}: BOOKSHELF_{name}"
            quoted += 1
    assert quoted >= 8


def _slugs_in_the_code() -> set[str]:
    """Every problem type the service can answer with: a class's ``slug = "…"`` or a
    ``slug="…"`` handed to the renderer."""
    found: set[str] = set()
    for module in (ROOT / "src" / "bookshelf").rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        found |= set(re.findall(r'slug(?:: ClassVar\[str\])? ?= ?"([a-z0-9-]+)"', text))
    return found


def test_the_api_guide_lists_every_problem_type() -> None:
    guide = (DOCS / "api.md").read_text(encoding="utf-8").split("\n## Errors\n", 1)[1]
    rows = [line for line in guide.splitlines() if line.startswith("| `")]
    listed = set(re.findall(r"`([a-z0-9-]+)`", "\n".join(row.split("|")[1] for row in rows)))
    # The web app answers its own refusals with pages, never with this problem.
    in_the_api = _slugs_in_the_code() - {"form-refused"}
    assert len(in_the_api) > 30
    assert sorted(in_the_api - listed) == [], "problem types missing from docs/api.md"
    assert sorted(listed - in_the_api) == [], "docs/api.md lists problem types nobody raises"
