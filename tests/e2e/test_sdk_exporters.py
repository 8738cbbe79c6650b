"""The official OpenTelemetry Python SDK exporters send spans to a real server; every field comes back."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

from spanlake.model import decode_value
from spanlake.storage.api import GetTrace, TraceQuery
from tests.e2e.conftest import open_reader


def _exporter(kind: str, server):
    if kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=server.otlp_grpc, insecure=True)
    if kind == "http-protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=server.otlp_http + "/v1/traces")
    if kind == "http-json":
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter  # type: ignore

        return OTLPSpanExporter(endpoint=server.otlp_http + "/v1/traces")
    raise AssertionError(kind)


def _emit(provider: TracerProvider, service: str) -> None:
    tracer = provider.get_tracer("acceptance.tracer", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.21.0")
    with tracer.start_as_current_span("GET /orders/{id}", kind=SpanKind.SERVER, attributes={
        "http.request.method": "GET", "http.route": "/orders/{id}", "http.response.status_code": 200,
        "ratio": 0.25, "retry": False, "tags": ["a", "b"], "ids": [1, 2, 3], "weights": [0.5, 1.5],
        "flags": [True, False], "big": 2**62,
    }) as root:
        root.add_event("cache.miss", {"cache.key": "order:42", "attempt": 2})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT, attributes={
            "db.system": "postgresql", "db.statement": "SELECT * FROM orders WHERE id = $1",
            "peer.service": "postgres",
        }) as child:
            child.set_status(Status(StatusCode.ERROR, "deadlock detected"))
            child.record_exception(RuntimeError("deadlock detected"))
        other = tracer.start_span("publish order", kind=SpanKind.PRODUCER,
                                  links=[Link(root.get_span_context(), {"link.reason": "batch"})],
                                  context=set_span_in_context(root))
        other.end()


@pytest.mark.parametrize("kind", ["grpc", "http-protobuf", "http-json"])
def test_sdk_exporter_round_trip(shared_server, kind: str) -> None:
    service = f"sdk-{kind}"
    resource = Resource.create({"service.name": service, "service.version": "9.9.9", "host.name": "box-1",
                                "deployment.environment.name": "test"})
    provider = TracerProvider(resource=resource)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(_exporter(kind, shared_server)))
    _emit(provider, service)
    provider.shutdown()
    sent = memory.get_finished_spans()
    assert len(sent) == 3

    # What the SDK put on the wire, encoded by its own OTLP encoder.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    wire_flags = {s.span_id: s.flags for rs in encode_spans(sent).resource_spans
                  for ss in rs.scope_spans for s in ss.spans}
    store = open_reader(shared_server.data_dir)
    try:
        trace_id = sent[0].context.trace_id.to_bytes(16, "big")
        stored = store.get_trace(GetTrace(trace_id))
        assert len(stored) == 3, f"expected 3 spans, found {len(stored)}"
        by_id = {s.span_id: s for s in stored}
        for span in sent:
            got = by_id[span.context.span_id.to_bytes(8, "big")]
            assert got.trace_id == trace_id
            assert got.name == span.name
            assert got.kind == span.kind.value + 1  # SDK enum is 0-based, OTLP's is 1-based
            assert got.start_ns == span.start_time
            assert got.duration_ns == span.end_time - span.start_time
            assert got.parent_span_id == (span.parent.span_id.to_bytes(8, "big") if span.parent else b"")
            assert got.status_code == {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}[span.status.status_code]
            assert got.status_message == (span.status.description or "")
            assert got.flags == wire_flags[span.context.span_id.to_bytes(8, "big")]
            assert {k: decode_value(v) for k, v in got.attributes.items()} == {
                k: (list(v) if isinstance(v, tuple) else v) for k, v in span.attributes.items()
            }
            assert [(e.name, e.time_ns) for e in got.events] == [(e.name, e.timestamp) for e in span.events]
            for ge, se in zip(got.events, span.events):
                assert {k: decode_value(v) for k, v in ge.attributes.items()} == dict(se.attributes)
            assert [(l.trace_id, l.span_id) for l in got.links] == [
                (l.context.trace_id.to_bytes(16, "big"), l.context.span_id.to_bytes(8, "big")) for l in span.links
            ]
            for gl, sl in zip(got.links, span.links):
                assert {k: decode_value(v) for k, v in gl.attributes.items()} == dict(sl.attributes)
            assert got.resource.service_name == service
            assert {k: decode_value(v) for k, v in got.resource.attributes.items()} == dict(span.resource.attributes)
            assert got.scope.name == "acceptance.tracer"
            assert got.scope.version == "1.2.3"
            assert got.scope.schema_url == "https://opentelemetry.io/schemas/1.21.0"
        assert service in store.get_services()
        found = store.find_trace_ids(TraceQuery(service_name=service, limit=10))
        assert [f.trace_id for f in found] == [trace_id]
    finally:
        store.close()


def test_export_is_acknowledged_only_after_commit(shared_server) -> None:
    """A span is readable from another process as soon as its export returned OK."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "ack-after-commit"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=shared_server.otlp_grpc, insecure=True)))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("one") as span:
        tid = span.get_span_context().trace_id.to_bytes(16, "big")
    store = open_reader(shared_server.data_dir)
    try:
        assert len(store.get_trace(GetTrace(tid))) == 1
    finally:
        store.close()
        provider.shutdown()
