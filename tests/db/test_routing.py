"""Replica settings, WAL positions and the writers' memory, without servers (the routing itself
is tested on a real replica: ``test_replicas.py``)."""

from __future__ import annotations

import logging
import time

import pytest

from bookshelf.config import ConfigurationError, load_settings
from bookshelf.db.positions import parse_position
from bookshelf.db.routing import RecentWriters
from tests.conftest import make_settings
from tests.ops.support import http, started


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0/0", 0),
        ("0/16B3748", 0x16B3748),
        ("16/B374D848", (0x16 << 32) | 0xB374D848),
        ("FFFFFFFF/FFFFFFFF", (1 << 64) - 1),
    ],
)
def test_a_wal_position_compares_as_the_number_it_names(text: str, value: int) -> None:
    assert parse_position(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "16B374D848", "/1", "1/", "g/1", "1/x", "-1/0", "1/100000000", "0/0/0", "1" * 20, None],
)
def test_what_is_not_a_wal_position_is_no_hint(text: str | None) -> None:
    assert parse_position(text) is None


def test_positions_order_across_the_segment_boundary() -> None:
    earlier, later = parse_position("0/FFFFFFFF"), parse_position("1/0")
    assert earlier is not None
    assert later is not None
    assert later > earlier


def test_replica_urls_are_normalised_for_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "BOOKSHELF_DATABASE_REPLICA_URLS",
        "postgresql://u:r3plica-pass@replica-1/bookshelf, postgres://u:r3plica-pass@replica-2:6432/bookshelf",
    )
    settings = load_settings()
    assert settings.replica_url_list == [
        "postgresql+asyncpg://u:r3plica-pass@replica-1/bookshelf",
        "postgresql+asyncpg://u:r3plica-pass@replica-2:6432/bookshelf",
    ]
    assert "r3plica-pass" not in repr(settings)


@pytest.mark.parametrize("urls", ["not a url", "sqlite:///replica.db", "mysql://h/db"])
def test_a_replica_url_that_is_not_postgresql_is_refused(
    monkeypatch: pytest.MonkeyPatch, urls: str
) -> None:
    monkeypatch.setenv("BOOKSHELF_DATABASE_REPLICA_URLS", urls)
    with pytest.raises(ConfigurationError, match="BOOKSHELF_DATABASE_REPLICA_URLS"):
        load_settings()


def test_no_replicas_by_default() -> None:
    assert make_settings("sqlite+aiosqlite:///unused.db").replica_url_list == []


async def test_sqlite_ignores_replicas_and_says_so(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        sqlite_url, database_replica_urls="postgresql://postgres@127.0.0.1:9/bookshelf"
    )
    with caplog.at_level(logging.WARNING, logger="bookshelf.db"):
        async with started(settings) as app, http(app) as anonymous:
            assert app.state.read_router is None
            response = await anonymous.get("/api/v1/books")
    assert response.status_code == 200
    assert "Bookshelf-Read-After" not in response.headers
    ignored = [record for record in caplog.records if "REPLICA_URLS" in record.getMessage()]
    assert len(ignored) == 1


def test_writers_are_remembered_for_the_window_only() -> None:
    writers = RecentWriters(window_seconds=0.2)
    writers.wrote(b"Bearer one")
    assert writers.recently(b"Bearer one")
    assert not writers.recently(b"Bearer two")
    time.sleep(0.25)
    assert not writers.recently(b"Bearer one")
