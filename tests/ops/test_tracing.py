"""Opt-in OpenTelemetry tracing: spans for requests and for SQL, none when off."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http import trace_exporter as otlp_trace_exporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bookshelf.config import ConfigurationError, Settings
from bookshelf.main import create_app
from bookshelf.ops import tracing
from tests.factories import BOOKS


@pytest.fixture
async def traced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, InMemorySpanExporter]]:
    # Spans go to memory instead of an OTLP collector (there is none here).
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(otlp_trace_exporter, "OTLPSpanExporter", lambda: exporter)
    app = create_app(settings.model_copy(update={"tracing": True}))
    async with app.router.lifespan_context(app):
        yield app, exporter
    app.state.tracer_provider.shutdown()


async def test_a_request_makes_a_server_span_and_sql_spans(
    traced: tuple[FastAPI, InMemorySpanExporter],
) -> None:
    app, exporter = traced
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get(BOOKS)
    assert response.status_code == 200

    app.state.tracer_provider.force_flush()
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert len(server) == 1
    assert server[0].attributes is not None
    assert server[0].attributes.get("http.route") == "/api/v1/books"
    sql = [s for s in spans if s.attributes and "db.statement" in s.attributes]
    assert any("FROM books" in str(s.attributes["db.statement"]) for s in sql)
    # SQL spans are children of the request's trace.
    assert {s.context.trace_id for s in sql} == {server[0].context.trace_id}


async def test_health_and_metrics_are_not_traced(
    traced: tuple[FastAPI, InMemorySpanExporter],
) -> None:
    app, exporter = traced
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get("/metrics")).status_code == 200
    app.state.tracer_provider.force_flush()
    assert [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"] == []


def test_tracing_is_off_by_default(settings: Settings) -> None:
    assert create_app(settings).state.tracer_provider is None


def test_tracing_without_the_extra_is_a_configuration_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracing, "REQUIRED_MODULES", ("opentelemetry.not_installed_here",))
    with pytest.raises(ConfigurationError, match="BOOKSHELF_TRACING"):
        create_app(settings.model_copy(update={"tracing": True}))
