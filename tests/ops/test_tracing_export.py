"""Tracing as deployed: spans leave the process over OTLP/HTTP, to a receiver that decodes them
with the protocol's own message types, and every log line of a traced request names its trace.

The receiver is a small HTTP server on 127.0.0.1 (what an OpenTelemetry collector's OTLP/HTTP
receiver does, minus the forwarding): the exporter is the real one, configured only through
the standard ``OTEL_*`` variables, as in the Deployment.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from bookshelf.config import Settings
from tests.factories import PASSPHRASE, register
from tests.ops.support import http, logging_as_served, started

TRACES_PATH = "/v1/traces"


class OtlpSink(ThreadingHTTPServer):
    """Collects the spans of every OTLP/HTTP export it receives (protobuf, maybe gzipped)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ExportHandler)
        self.spans: list[Span] = []
        self.service_names: set[str] = set()
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{TRACES_PATH}"


class _ExportHandler(BaseHTTPRequestHandler):
    server: OtlpSink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path != TRACES_PATH or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_error(404)
            return
        export = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            for resource_spans in export.resource_spans:
                for attribute in resource_spans.resource.attributes:
                    if attribute.key == "service.name":
                        self.server.service_names.add(attribute.value.string_value)
                for scope_spans in resource_spans.scope_spans:
                    self.server.spans.extend(scope_spans.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what arrived, not the server's lines."""


@contextmanager
def otlp_sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    thread = threading.Thread(target=sink.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()
        thread.join(timeout=10)


def attributes(span: Span) -> dict[str, str]:
    return {item.key: item.value.string_value for item in span.attributes}


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpSink]:
    with otlp_sink() as receiver:
        # The standard variable the Deployment sets (see docs/deploying.md, "Tracing").
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
        yield receiver


async def test_a_registration_exports_its_route_its_statements_and_its_outbox_write(
    settings: Settings, sink: OtlpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(
        update={
            "tracing": True,
            "tracing_service_name": "bookshelf-under-test",
            "json_logs": True,
            "database_echo": True,
        }
    )
    with logging_as_served(settings):
        async with started(settings) as app, http(app) as client:
            response = await register(client, email="traced@example.org", password=PASSPHRASE)
            assert response.status_code == 202, response.text
            request_id = response.headers["x-request-id"]
            # Exported over HTTP to the sink before the provider is done with them.
            assert app.state.tracer_provider.force_flush(10_000)
        app.state.tracer_provider.shutdown()

    assert sink.service_names == {"bookshelf-under-test"}
    [server] = [
        span
        for span in sink.spans
        if span.kind == Span.SPAN_KIND_SERVER
        and attributes(span).get("http.route") == "/api/v1/auth/register"
    ]
    server_attributes = attributes(server)
    # The instrumentation names it by the semantic conventions it follows (old or new).
    assert server_attributes.get("http.request.method", server_attributes.get("http.method")) == (
        "POST"
    )
    in_request = [span for span in sink.spans if span.trace_id == server.trace_id]
    client = Span.SPAN_KIND_CLIENT
    statements = [attributes(span)["db.statement"] for span in in_request if span.kind == client]
    assert any(sql.startswith("INSERT INTO users") for sql in statements), statements
    # The outbox write: the verification mail, in the same trace as the request.
    assert any(sql.startswith("INSERT INTO mail_outbox") for sql in statements), statements
    dialect = "postgresql" if "postgresql" in settings.database_url.get_secret_value() else "sqlite"
    assert {attributes(span)["db.system"] for span in in_request if span.kind == client} == {
        dialect
    }

    # Every line written while serving the request names its trace: the access line and the
    # SQL echo alike.
    trace_id = server.trace_id.hex()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    served = [
        line
        for line in lines
        if line.get("request_id") == request_id and line["logger"].startswith("bookshelf")
    ]
    assert {line["logger"] for line in served} >= {"bookshelf.access", "bookshelf.db"}
    assert {line["trace_id"] for line in served} == {trace_id}
    span_ids = {span.span_id.hex() for span in in_request}
    assert {line["span_id"] for line in served} <= span_ids


async def test_without_tracing_no_line_carries_trace_ids(
    settings: Settings, sink: OtlpSink, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings.model_copy(update={"json_logs": True, "database_echo": True})
    with logging_as_served(settings):
        async with started(settings) as app, http(app) as client:
            response = await register(client, email="untraced@example.org", password=PASSPHRASE)
            assert response.status_code == 202, response.text
            assert app.state.tracer_provider is None
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert [line for line in lines if line.get("request_id")], "the request logged lines"
    assert not [line for line in lines if "trace_id" in line or "span_id" in line]
    assert sink.spans == []


def test_the_image_lock_holds_the_otel_extra() -> None:
    """The image installs requirements.lock alone: every package of the ``otel`` extra must be
    pinned there, or BOOKSHELF_TRACING=true would refuse to start in the shipped image."""
    root = Path(__file__).resolve().parents[2]
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["otel"]
    wanted = {re.split(r"[<>=!~\[ ]", requirement)[0].lower() for requirement in extra}
    pinned = set(re.findall(r"^([a-z0-9_.-]+)==", (root / "requirements.lock").read_text(), re.M))
    assert wanted, "the otel extra lists its packages"
    assert wanted <= pinned, wanted - pinned
