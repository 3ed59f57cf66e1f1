"""OpenTelemetry tracing, opt-in: BOOKSHELF_TRACING=true (the image's lock has the ``otel``
extra; a plain ``pip install bookshelf`` needs ``bookshelf[otel]``).

Spans are made for every request (FastAPI instrumentation) and every SQL statement (by the
data layer, ``db.database``, with the provider's tracer), and exported over OTLP/HTTP; the
exporter reads the standard ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_ENDPOINT`` …). The
packages are imported only when tracing is on, so a deployment without the extra never loads
them. With tracing on, every log line written inside a span carries its ``trace_id`` and
``span_id`` (``trace_ids_processor``), so a trace leads to its lines and back.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

REQUIRED_MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.fastapi",
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


LogProcessor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]


def trace_ids_processor() -> LogProcessor:
    """A structlog processor: the current span's trace and span ids, in the hexadecimal form
    tracing backends show, on the event (nothing outside a span)."""
    # Imported here on purpose: the extra is optional (see the module docstring).
    from opentelemetry import trace

    def add_trace_ids(
        _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event.setdefault("trace_id", format(context.trace_id, "032x"))
            event.setdefault("span_id", format(context.span_id, "016x"))
        return event

    return add_trace_ids
