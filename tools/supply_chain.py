"""Supply-chain checks of the runtime lock (``requirements.lock``), run by ``.ci/run``:

* an SBOM: every locked runtime package, with its version, purl and hashes, as CycloneDX JSON
  (``cyclonedx-py``), kept in the artefacts folder;
* a known-vulnerability audit of the same lock (``pip-audit``, PyPI's vulnerability data).

The audit needs a vulnerability service over the network. When it cannot reach one (a mirror
that serves only the package index, no route to the internet), pip-audit skips every package
and still says "No known vulnerabilities found"; this module counts the skipped packages and
says plainly that the audit was not done, instead of passing it off as clean. A found
vulnerability fails; an unreachable service fails only with ``--require-audit``.

    python3 dev.py supply-chain [--output DIR] [--require-audit]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bookshelf import __version__

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
SBOM_NAME = "sbom.cdx.json"
AUDIT_NAME = "vulnerability-audit.json"
# The audit talks to a service over the network: each request, and the whole audit, is bounded
# so a network that swallows packets costs CI minutes, not its whole time limit.
AUDIT_REQUEST_TIMEOUT_SECONDS = 10
AUDIT_TIMEOUT_SECONDS = 300
# The tools are console scripts of the venv this module runs in (the dev lock installs them).
SCRIPTS = Path(sys.executable).parent


def write_sbom(output_dir: Path, lock: Path = RUNTIME_LOCK) -> Path:
    """Write the lock's CycloneDX SBOM (JSON), with Bookshelf itself as the root component."""
    output = output_dir / SBOM_NAME
    command = [
        str(SCRIPTS / "cyclonedx-py"),
        "requirements",
        str(lock),
        "--pyproject",
        str(ROOT / "pyproject.toml"),
        "--output-format",
        "JSON",
        "--output-file",
        str(output),
    ]
    # Its one warning (the root component lists no dependencies) is about the graph, which a
    # flat lock does not have; the components are what the SBOM is for.
    quiet = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning"}
    subprocess.run(command, check=True, cwd=ROOT, env=quiet)
    # The root component's version comes from the package, the version's one source: a
    # pyproject.toml whose version is dynamic gives cyclonedx-py none to read.
    sbom = json.loads(output.read_text(encoding="utf-8"))
    sbom["metadata"]["component"]["version"] = __version__
    output.write_text(json.dumps(sbom, indent=2) + "\n", encoding="utf-8")
    return output


@dataclass
class AuditOutcome:
    """What an audit established: the vulnerabilities found, and the packages it could not
    check (with why), out of how many."""

    checked: int
    vulnerable: dict[str, list[str]] = field(default_factory=dict)
    not_checked: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.error and not self.not_checked

    def summary(self) -> str:
        if self.vulnerable:
            found = "; ".join(f"{name}: {', '.join(ids)}" for name, ids in self.vulnerable.items())
            return f"audit: KNOWN VULNERABILITIES in the runtime lock: {found}"
        if self.error:
            return f"audit: NOT DONE, the vulnerability service could not be used: {self.error}"
        if self.not_checked:
            reason = next(iter(self.not_checked.values()))
            rest = self.checked - len(self.not_checked)
            return (
                f"audit: NOT DONE for {len(self.not_checked)} of {self.checked} locked packages "
                f"(the vulnerability service had no answer for them; first reason: {reason}); "
                f"no known vulnerability in the other {rest}"
            )
        return f"audit: no known vulnerability in the {self.checked} locked packages"


def read_audit(report: dict[str, Any]) -> AuditOutcome:
    """Classify pip-audit's JSON report (``-f json``)."""
    dependencies = report.get("dependencies", [])
    outcome = AuditOutcome(checked=len(dependencies))
    for dependency in dependencies:
        name = f"{dependency['name']} {dependency.get('version', '')}".strip()
        if "skip_reason" in dependency:
            outcome.not_checked[name] = dependency["skip_reason"]
        elif dependency.get("vulns"):
            outcome.vulnerable[name] = [vuln["id"] for vuln in dependency["vulns"]]
    return outcome


def audit(
    output_dir: Path,
    lock: Path = RUNTIME_LOCK,
    service: str = "pypi",
    timeout_seconds: float = AUDIT_TIMEOUT_SECONDS,
) -> AuditOutcome:
    """Audit the lock's pinned packages (hash-checked, no resolution, no pip) and keep
    pip-audit's JSON report beside the SBOM."""
    output = output_dir / AUDIT_NAME
    output.unlink(missing_ok=True)
    command = [
        str(SCRIPTS / "pip-audit"),
        "--requirement",
        str(lock),
        "--require-hashes",
        "--disable-pip",
        "--vulnerability-service",
        service,
        "--progress-spinner",
        "off",
        "--timeout",
        str(AUDIT_REQUEST_TIMEOUT_SECONDS),
        "--format",
        "json",
        "--output",
        str(output),
    ]
    # The cache stays out of the user's home (pip-audit defaults to pip's cache there).
    command += ["--cache-dir", str(output_dir / ".pip-audit-cache")]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=ROOT, timeout=timeout_seconds
        )
    except subprocess.TimeoutExpired:
        return AuditOutcome(checked=0, error=f"no answer within {timeout_seconds:g} s")
    if not output.exists():
        # pip-audit stopped before writing its report: a service it could not reach raises.
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        return AuditOutcome(checked=0, error=lines[-1] if lines else "pip-audit failed")
    return read_audit(json.loads(output.read_text(encoding="utf-8")))


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py supply-chain", description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "test-artifacts")
    parser.add_argument(
        "--require-audit",
        action="store_true",
        help="fail when the audit could not be done (else it is reported, not failed)",
    )
    options = parser.parse_args(arguments)
    options.output.mkdir(parents=True, exist_ok=True)
    sbom = write_sbom(options.output)
    components = json.loads(sbom.read_text(encoding="utf-8"))["components"]
    print(f"sbom: {len(components)} runtime packages in {sbom}", flush=True)
    outcome = audit(options.output)
    print(outcome.summary(), flush=True)
    if outcome.vulnerable:
        return 1
    if not outcome.complete and options.require_audit:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
