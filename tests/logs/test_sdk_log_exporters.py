"""The OpenTelemetry Python SDK's log exporters send to a real server; every field comes back,
through the store and through the log API, and logs written inside a span join their trace."""

from __future__ import annotations

import logging

import httpx
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanlake.model import decode_value
from spanlake.storage.api import LogQuery
from tests.e2e.conftest import open_reader


def _log_exporter(kind: str, server):
    if kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=server.otlp_grpc, insecure=True)
    if kind == "http-protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=server.otlp_http + "/v1/logs")
    if kind == "http-json":
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter  # type: ignore

        return OTLPLogExporter(endpoint=server.otlp_http + "/v1/logs")
    raise AssertionError(kind)


def _span_exporter(server):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=server.otlp_grpc, insecure=True)


@pytest.mark.filterwarnings("ignore:`LoggingHandler` in `opentelemetry-sdk` is deprecated")
@pytest.mark.parametrize("kind", ["grpc", "http-protobuf", "http-json"])
def test_sdk_log_exporter_round_trip(shared_server, kind: str) -> None:
    service = f"sdk-logs-{kind}"
    resource = Resource.create({"service.name": service, "service.version": "9.9.9", "host.name": "box-1"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(_span_exporter(shared_server)))
    logger_provider = LoggerProvider(resource=resource)
    memory = InMemoryLogRecordExporter()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    processor = BatchLogRecordProcessor if kind == "grpc" else SimpleLogRecordProcessor
    logger_provider.add_log_record_processor(processor(_log_exporter(kind, shared_server)))

    py_logger = logging.getLogger(f"sdk.logs.{kind}")
    py_logger.propagate = False
    py_logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider)
    py_logger.addHandler(handler)
    otel_logger = logger_provider.get_logger("acceptance.logger", "1.2.3")
    tracer = tracer_provider.get_tracer("acceptance.tracer")
    try:
        with tracer.start_as_current_span("checkout") as root:
            py_logger.info("checkout started for order %s", 42, extra={"order.id": 42, "vip": True})
            with tracer.start_as_current_span("charge") as child:
                py_logger.warning("card declined, retrying")
        otel_logger.emit(body={"event": "audit", "fields": [1, "two"]}, severity_number=SeverityNumber.ERROR,
                         severity_text="ERROR", attributes={"audit.user": "alice"}, event_name="app.audit")
    finally:
        py_logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()
    sent = {r.log_record.body if isinstance(r.log_record.body, str) else "audit": r.log_record
            for r in memory.get_finished_logs()}
    assert len(sent) == 3
    trace_id = root.get_span_context().trace_id.to_bytes(16, "big")
    root_id = root.get_span_context().span_id.to_bytes(8, "big")
    child_id = child.get_span_context().span_id.to_bytes(8, "big")

    store = open_reader(shared_server.data_dir)
    try:
        page = store.search_logs(LogQuery(service_name=service, start_ns=0))
    finally:
        store.close()
    stored = {r.body_text if r.event_name != "app.audit" else "audit": r for r in page.records}
    assert stored.keys() == sent.keys()
    for key, want in sent.items():
        got = stored[key]
        # The SDK leaves the time of ``emit`` without one unset: the observed time stands in.
        assert got.time_ns == (want.timestamp or want.observed_timestamp)
        assert got.observed_time_ns == want.observed_timestamp
        assert (got.severity_number, got.severity_text) == (want.severity_number.value, want.severity_text)
        assert got.service_name == service and got.scope.name
        assert {k: decode_value(v) for k, v in got.resource.attributes.items()} == dict(resource.attributes)
        sent_attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in (want.attributes or {}).items()}
        assert {k: decode_value(v) for k, v in got.attributes.items()} == sent_attrs
    info = stored["checkout started for order 42"]
    assert (info.trace_id, info.span_id, info.severity_number) == (trace_id, root_id, 9)
    assert decode_value(info.attributes["order.id"]) == 42 and decode_value(info.attributes["vip"]) is True
    # Flags as the SDK's own encoder put them on the wire (sampled, and W3C's random bit).
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

    wire_flags = {r.body.string_value: r.flags for rl in encode_logs(memory.get_finished_logs()).resource_logs
                  for sl in rl.scope_logs for r in sl.log_records}
    assert info.flags == wire_flags["checkout started for order 42"] and info.flags & 1
    assert (stored["card declined, retrying"].span_id, stored["card declined, retrying"].severity_number) == (child_id, 13)
    audit = stored["audit"]
    assert decode_value(audit.body) == {"event": "audit", "fields": [1, "two"]}
    assert (audit.trace_id, audit.event_name, audit.scope.name, audit.scope.version) == (
        b"", "app.audit", "acceptance.logger", "1.2.3")

    # The same records through the API, and the trace's logs grouped by span.
    api = shared_server.http_url + "/api/spanlake/v1"
    doc = httpx.get(api + "/logs", params={"service": service, "start": "0"}).json()
    assert [x["body"] for x in doc["logs"]][-1] == "checkout started for order 42"  # newest first
    assert {x["severity"] for x in doc["logs"]} == {"INFO", "WARN", "ERROR"}
    grouped = httpx.get(f"{api}/traces/{trace_id.hex()}/logs").json()
    assert grouped["logCount"] == 2
    assert [(g["spanId"], [x["body"] for x in g["logs"]]) for g in grouped["spans"]] == [
        (root_id.hex(), ["checkout started for order 42"]), (child_id.hex(), ["card declined, retrying"])]
    assert httpx.get(f"{api}/traces/{trace_id.hex()}").status_code == 200, "the spans arrived too"
