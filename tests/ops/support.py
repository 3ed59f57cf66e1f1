"""Helpers for the operating tests: apps built from their own settings, clients with a chosen
peer address, Prometheus samples."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from bookshelf.config import Settings
from bookshelf.main import create_app

LOCALHOST = "127.0.0.1"


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[FastAPI]:
    """``create_app(settings)`` with its lifespan running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def http(
    app: FastAPI,
    *,
    address: str = LOCALHOST,
    base_url: str = "http://testserver",
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An in-process client whose requests arrive from ``address`` (the ASGI peer)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50123))
    return httpx.AsyncClient(transport=transport, base_url=base_url, headers=headers)


def random_address() -> str:
    """An address no other test uses, so shared rate-limit counters never collide."""
    return "10." + ".".join(str(random.randrange(1, 255)) for _ in range(3))


def sample(exposition: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus text exposition; 0 when the series is absent."""
    for family in text_string_to_metric_families(exposition):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return float(item.value)
    return 0.0


def series_names(exposition: str) -> set[str]:
    return {
        item.name
        for family in text_string_to_metric_families(exposition)
        for item in family.samples
    }


async def scrape(client: httpx.AsyncClient, path: str = "/metrics") -> str:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.text
