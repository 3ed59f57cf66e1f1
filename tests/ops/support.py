"""Helpers for the operating tests: apps built from their own settings, the process's logging
as a served process has it, clients with a chosen peer address, Prometheus samples."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import BaseRoute

from bookshelf.config import Settings
from bookshelf.main import configure_process, create_app

LOCALHOST = "127.0.0.1"


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[FastAPI]:
    """``create_app(settings)`` with its lifespan running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def app_routes(app: FastAPI) -> list[BaseRoute]:
    """Every route of ``app`` as declared, whether the fast path copied it onto the app's list
    or plain FastAPI keeps it in an included router."""
    return [context.original_route for context in iter_route_contexts(app.routes)]


def api_route(app: FastAPI, name: str) -> APIRoute:
    [route] = [r for r in app_routes(app) if isinstance(r, APIRoute) and r.name == name]
    return route


@contextmanager
def logging_as_served(settings: Settings) -> Iterator[None]:
    """The process's logging configured from ``settings`` as ``bookshelf serve`` does it in each
    process (``configure_process``), writing to the stderr of the moment (capsys's): for
    tests that read log lines. ``create_app`` leaves logging alone, so without this the
    standard library's lines would not be formatted at all. Afterwards the root logger, and the
    SQL logger that ``BOOKSHELF_DATABASE_ECHO`` turns up, are put back."""
    watched = [logging.getLogger(), logging.getLogger("bookshelf.db")]
    saved = [(logger, list(logger.handlers), logger.level) for logger in watched]
    configure_process(settings)
    try:
        yield
    finally:
        for logger, handlers, level in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)


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


def busy_refusals(work: str) -> float:
    """This process's count of ``work`` refused for want of a slot (the metric operators read)."""
    return REGISTRY.get_sample_value("bookshelf_busy_refusals_total", {"work": work}) or 0.0


def store_failures(budget: str, outcome: str) -> float:
    """This process's count of rate-limit store failures of ``budget`` and their ``outcome``."""
    sample = REGISTRY.get_sample_value(
        "bookshelf_rate_limit_store_failures_total", {"limit": budget, "outcome": outcome}
    )
    return sample or 0.0
