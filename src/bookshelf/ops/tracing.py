"""OpenTelemetry tracing, opt-in: ``pip install bookshelf[otel]`` and BOOKSHELF_TRACING=true.

Spans are made for every request (FastAPI instrumentation) and every SQL statement (SQLAlchemy
instrumentation), and exported over OTLP/HTTP; the exporter reads the standard ``OTEL_*``
variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` …). The packages are imported only when tracing is
on, so a deployment without the extra never loads them.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

REQUIRED_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.fastapi",
    "opentelemetry.instrumentation.sqlalchemy",
)


def tracing_available() -> bool:
    return all(_has(name) for name in REQUIRED_MODULES)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def install_tracing(app: FastAPI, service_name: str) -> Any:
    """Instrument requests; returns the tracer provider (kept on ``app.state``)."""
    # Imported here on purpose: the extra is optional (see the module docstring).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="/health/.*,/metrics"
    )
    return provider


def instrument_engine(engine: AsyncEngine, provider: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares support up to SQLAlchemy 2.0 only; it hooks the engine's
    # cursor events, which 2.1 keeps unchanged (the tracing tests prove the spans come out).
    instrumentor = SQLAlchemyInstrumentor()  # a process-wide singleton
    if instrumentor.is_instrumented_by_opentelemetry:
        # A process serves one app; a second one (tests) takes the instrumentation over.
        instrumentor.uninstrument()
    instrumentor.instrument(
        engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
