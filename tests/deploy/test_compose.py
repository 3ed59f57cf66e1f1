"""compose, checked offline beyond test_files.py: PgBouncer between the app and PostgreSQL
(migrations straight to PostgreSQL), the shared pgbouncer.ini mounted where the command reads
it, every reference resolving, and the development override (compose.dev.yaml) sending mail to
Mailpit with settings development accepts."""

from __future__ import annotations

import configparser
import re
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url

from bookshelf.config import Environment, load_settings
from tests.deploy.kustomize import merge
from tests.deploy.manifests import COMPOSE, DEPLOY
from tests.deploy.test_files import COMPOSE_VARIABLES, compose_environment

DEVELOPMENT = DEPLOY / "compose.dev.yaml"
APP_SERVICES = ("migrate", "app", "worker")


def compose(*overrides: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    for name in overrides:
        document = merge(document, yaml.safe_load((DEPLOY / name).read_text()))
    return document


@pytest.mark.parametrize("files", [(), ("compose.dev.yaml",)], ids=["compose", "development"])
def test_every_reference_resolves(files: tuple[str, ...]) -> None:
    document = compose(*files)
    services = document["services"]
    for name, service in services.items():
        assert set(service.get("depends_on", {})) <= set(services), name
        for config in service.get("configs", []):
            assert config["source"] in document["configs"], (name, config)
    for config in document.get("configs", {}).values():
        if "file" in config:
            assert (DEPLOY / config["file"]).is_file(), config


def test_the_app_and_worker_go_through_pgbouncer_and_migrations_do_not() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        url = make_url(compose_environment(name, COMPOSE_VARIABLES)["BOOKSHELF_DATABASE_URL"])
        expected = ("postgres", 5432) if name == "migrate" else ("pgbouncer", 6432)
        assert (url.host, url.port) == expected, name
        if name != "migrate":
            assert "pgbouncer" in services[name]["depends_on"], name
    bouncer = services["pgbouncer"]
    targets = {config["target"] for config in bouncer["configs"]}
    assert bouncer["command"][-1] in targets
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read_string((DEPLOY / compose()["configs"]["pgbouncer-ini"]["file"]).read_text())
    assert parser["pgbouncer"]["auth_file"] in targets
    [(alias, target)] = parser["databases"].items()
    assert f"host=postgres port=5432 dbname={alias}" in target
    assert bouncer["read_only"] is True
    assert bouncer["cap_drop"] == ["ALL"]


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("service", APP_SERVICES)
def test_the_development_override_sends_mail_to_mailpit(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    document = compose("compose.dev.yaml")
    for name, value in compose_environment(service, COMPOSE_VARIABLES, document).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.smtp_url is not None
    assert make_url(settings.smtp_url.get_secret_value()).host == "mailpit"
    mailpit = document["services"]["mailpit"]
    assert re.match(r"v?\d+\.\d+\.\d+$", mailpit["image"].partition(":")[2]), mailpit["image"]
    # Its web page only on this machine; nothing of it in production's compose.yaml.
    assert all(port.startswith("127.0.0.1:") for port in mailpit["ports"])
    assert "mailpit" not in compose()["services"]
    if service == "worker":
        assert "mailpit" in document["services"]["worker"]["depends_on"]
