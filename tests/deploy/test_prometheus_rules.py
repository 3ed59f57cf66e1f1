"""The shipped Prometheus configuration, checked with Debian's promtool: the scrape
configuration and rules are valid, the rule unit tests pass and make every alert fire and
clear, every alert says what to do, and the operator's PrometheusRule carries exactly the
same rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, ROOT, unavailable
from tools import operator_rules

PROMETHEUS = DEPLOY / "prometheus"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yaml"))
SEVERITIES = {"page", "ticket"}


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed (Debian package prometheus)")
    return subprocess.run(
        [str(found), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROMETHEUS,
    )


def alerting_rules() -> list[dict[str, Any]]:
    return [
        rule for group in operator_rules.rule_groups() for rule in group["rules"] if "alert" in rule
    ]


def test_the_scrape_configuration_and_its_rules_are_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout
    rules = promtool("check", "rules", "rules/recording.yml", "rules/alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 32 rules found" in rules.stdout
    assert "SUCCESS: 17 rules found" in rules.stdout


def test_the_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_the_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule test expecting an alert that stays silent fails: the tests above are real."""
    tests = yaml.safe_load(RULE_TESTS[0].read_text())
    tests["rule_files"] = [
        str(PROMETHEUS / "rules" / Path(name).name) for name in tests["rule_files"]
    ]
    firing = next(case for case in tests["tests"][0]["alert_rule_test"] if case["exp_alerts"])
    firing["eval_time"] = "1m"  # before any burst: nothing fires yet
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", path)
    assert result.returncode != 0
    assert firing["alertname"] in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_clearing() -> None:
    fired: set[str] = set()
    cleared: set[str] = set()
    for path in RULE_TESTS:
        for scenario in yaml.safe_load(path.read_text())["tests"]:
            for case in scenario.get("alert_rule_test", []):
                (fired if case["exp_alerts"] else cleared).add(case["alertname"])
    names = {rule["alert"] for rule in alerting_rules()}
    assert len(names) == 17
    assert names - fired == set()
    assert names - cleared == set()


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_a_summary_and_an_action(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"]
    assert len(annotations["action"]) > 40
    assert annotations["runbook"] == "docs/operating.md#alerts"


def test_rule_group_names_are_unique_once_merged() -> None:
    """The PrometheusRule holds every group in one list, where names must differ."""
    names = [group["name"] for group in operator_rules.rule_groups()]
    assert len(names) == len(set(names))


def test_the_operator_rules_are_the_rule_files() -> None:
    committed = operator_rules.OPERATOR_RULES.read_text()
    assert committed == operator_rules.operator_rules_text(), (
        "deploy/k8s/monitoring/prometheusrule.yaml is stale: run `python -m tools.operator_rules`"
    )
    assert yaml.safe_load(committed)["spec"]["groups"] == operator_rules.rule_groups()


def test_the_pod_monitors_scrape_the_ports_the_rules_name_as_jobs() -> None:
    monitors = list(yaml.safe_load_all((DEPLOY / "k8s/monitoring/podmonitor.yaml").read_text()))
    deployments = {
        document["metadata"]["name"]: document
        for path in (DEPLOY / "k8s").glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == "Deployment"
    }
    scraped = {}
    for monitor in monitors:
        assert monitor["kind"] == "PodMonitor"
        assert monitor["spec"]["jobLabel"] == "app"
        app = monitor["spec"]["selector"]["matchLabels"]["app"]
        template = deployments[app]["spec"]["template"]
        assert template["metadata"]["labels"]["app"] == app
        ports = {port["name"] for port in template["spec"]["containers"][0]["ports"]}
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] in ports
        scraped[app] = endpoint["port"]
    assert scraped == {"bookshelf": "admin", "bookshelf-mail-worker": "metrics"}
    jobs = {
        job["job_name"]
        for job in yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["scrape_configs"]
    }
    assert jobs == set(scraped)


def test_every_alert_and_objective_is_explained_in_the_operating_docs() -> None:
    docs = (ROOT / "docs" / "operating.md").read_text()
    for rule in alerting_rules():
        name = rule["alert"]
        burn = re.fullmatch(r"Bookshelf(\w+)BudgetBurn(Fast|Slow)", name)
        if burn:
            assert f"**{burn.group(1)}**" in docs, name  # its "what to do" paragraph
        else:
            assert f"| `{name}` |" in docs, name
    for group in operator_rules.rule_groups():
        for rule in group["rules"]:
            objective = re.fullmatch(
                r"(bookshelf:[a-z_]+:ratio_(?:rate|avg))\w+", rule.get("record", "")
            )
            if objective:
                assert f"`{objective.group(1)}…`" in docs, rule["record"]


def test_the_dashboard_is_a_well_formed_grafana_model() -> None:
    """What Grafana needs to import it: unique ids, panels inside the 24-column grid and not
    on top of each other, every query on the chosen Prometheus data source. (That each query
    answers is tests/deploy/test_live_prometheus.py's job.)"""
    dashboard = json.loads((DEPLOY / "grafana" / "bookshelf.json").read_text())
    assert dashboard["uid"] == "bookshelf"
    (variable,) = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].strip(), panel["title"]
    titles = {panel["title"] for panel in panels}
    for wanted in ("Requests by route", "Latency percentiles", "Problems by type", "Outbox"):
        assert wanted in titles
