"""The supply-chain checks ``.ci/run`` runs (``python3 dev.py supply-chain``): the SBOM names
every locked runtime package at its locked version, and the vulnerability audit never passes
off an audit it could not do as a clean one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bookshelf import __version__
from tools import supply_chain

LOCKED = re.compile(r"^([A-Za-z0-9_.\-]+)==([^ ;\\]+)", re.MULTILINE)
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked_packages(lock: Path) -> dict[tuple[str, str], set[str]]:
    """Each pinned (name, version) of a hashed lock, with its hashes."""
    text = lock.read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    packages = {}
    for entry in entries:
        pin = LOCKED.match(entry)
        if pin:
            packages[(_normalised(pin.group(1)), pin.group(2))] = set(HASH.findall(entry))
    return packages


@pytest.fixture(scope="module")
def sbom(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    output = supply_chain.write_sbom(tmp_path_factory.mktemp("sbom"))
    parsed: dict[str, object] = json.loads(output.read_text(encoding="utf-8"))
    return parsed


def test_the_sbom_lists_every_locked_runtime_package_at_its_version(sbom: dict) -> None:
    locked = _locked_packages(supply_chain.RUNTIME_LOCK)
    assert len(locked) > 40  # the parse found the lock's pins, not a stray line or two
    assert any(name == "fastapi" for name, _ in locked)
    components = {
        (_normalised(component["name"]), component["version"]): component
        for component in sbom["components"]
    }
    assert sorted(components) == sorted(locked)
    for (name, version), component in components.items():
        assert component["purl"] == f"pkg:pypi/{name}@{version}"
        hashes = {
            digest["content"]
            for reference in component.get("externalReferences", [])
            for digest in reference.get("hashes", [])
            if digest["alg"] == "SHA-256"
        }
        assert hashes == locked[(name, version)], name


def test_the_sbom_is_cyclonedx_json_describing_bookshelf(sbom: dict) -> None:
    assert sbom["bomFormat"] == "CycloneDX"
    assert float(sbom["specVersion"]) >= 1.5
    root = sbom["metadata"]["component"]
    assert (root["name"], root["version"]) == ("bookshelf", __version__)
    assert root["licenses"][0]["license"]["id"] == "MIT"


# pip-audit's JSON report (`-f json`), in the three shapes it takes.
VULNERABLE = {
    "dependencies": [
        {
            "name": "jinja2",
            "version": "2.10",
            "vulns": [{"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"]}],
        },
        {"name": "idna", "version": "3.10", "vulns": []},
    ]
}
CLEAN = {"dependencies": [{"name": "idna", "version": "3.10", "vulns": []}]}
UNREACHABLE = {
    "dependencies": [
        {"name": "idna", "skip_reason": "Dependency not found on PyPI and could not be audited"}
    ]
}


def test_a_vulnerable_package_is_reported_by_name_and_id() -> None:
    outcome = supply_chain.read_audit(VULNERABLE)
    assert outcome.vulnerable == {"jinja2 2.10": ["PYSEC-2019-217"]}
    assert "KNOWN VULNERABILITIES" in outcome.summary()
    assert "PYSEC-2019-217" in outcome.summary()


def test_a_clean_audit_says_how_many_packages_it_checked() -> None:
    outcome = supply_chain.read_audit(CLEAN)
    assert outcome.complete
    assert outcome.summary() == "audit: no known vulnerability in the 1 locked packages"


def test_skipped_packages_make_the_audit_not_done_rather_than_clean() -> None:
    outcome = supply_chain.read_audit(UNREACHABLE)
    assert not outcome.complete
    assert not outcome.vulnerable
    assert outcome.summary().startswith("audit: NOT DONE for 1 of 1 locked packages")


def test_the_real_audit_finds_a_known_vulnerability_or_says_it_could_not_look(
    tmp_path: Path,
) -> None:
    """Jinja2 2.10 has published advisories: pip-audit, run as CI runs it, must either find them
    or report that the audit was not done (here, where the vulnerability service may be out of
    reach). What it may never do is call the lock clean."""
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==2.10 \\\n    --hash=sha256:" + "a" * 64 + "\n", encoding="utf-8")
    outcome = supply_chain.audit(tmp_path, lock, timeout_seconds=60)
    if outcome.complete:
        assert "jinja2 2.10" in outcome.vulnerable
    else:
        assert "NOT DONE" in outcome.summary()
    assert "no known vulnerability in the 1" not in outcome.summary()


def test_ci_keeps_the_sbom_and_the_audit_as_artefacts() -> None:
    ci = (supply_chain.ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'python3 dev.py supply-chain --output "$BOOKSHELF_TEST_ARTIFACTS"' in ci


def test_an_audit_past_its_time_limit_is_not_done(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==2.10 \\\n    --hash=sha256:" + "a" * 64 + "\n", encoding="utf-8")
    # Too short for pip-audit even to start: the bound, not the network, ends it.
    outcome = supply_chain.audit(tmp_path, lock, timeout_seconds=0.01)
    assert not outcome.complete
    assert outcome.summary() == (
        "audit: NOT DONE, the vulnerability service could not be used: no answer within 0.01 s"
    )
