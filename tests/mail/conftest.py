"""The mail tests' app: verified addresses required, links to a public site, and a real SMTP
server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bookshelf.config import Settings
from tests.conftest import make_settings
from tests.mail.support import SmtpServer, smtp_server

PUBLIC_URL = "https://books.example.org"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, require_verified_email=True, public_url=PUBLIC_URL)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server
