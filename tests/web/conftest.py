"""The web app's tests: the API's harness (both databases), with verified addresses required
as in production, so the pages meet the same rules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from bookshelf.config import Settings
from tests.conftest import make_settings
from tests.web.support import Browser


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, require_verified_email=True)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Browser]:
    async with Browser(app) as anonymous:
        yield anonymous
