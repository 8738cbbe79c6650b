"""Spans sent by the OTel SDK through the real receivers, read back through every query API."""

from __future__ import annotations

import time

import grpc
import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from spanlake.protos import query_service_pb2, query_service_pb2_grpc


def _send_checkout_trace(server) -> tuple[str, dict[str, str]]:
    """A two-service trace: web (server + client) calls payments (server, failing)."""
    providers = {name: TracerProvider(resource=Resource.create({"service.name": name}))
                 for name in ("apis-web", "apis-payments")}
    for p in providers.values():
        p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.otlp_grpc, insecure=True)))
    web = providers["apis-web"].get_tracer("web")
    pay = providers["apis-payments"].get_tracer("pay")
    names: dict[str, str] = {}
    with web.start_as_current_span("POST /checkout", kind=SpanKind.SERVER,
                                   attributes={"http.route": "/checkout", "order.id": "o-77"}) as root:
        names["POST /checkout"] = format(root.get_span_context().span_id, "016x")
        with web.start_as_current_span("charge", kind=SpanKind.CLIENT) as client:
            names["charge"] = format(client.get_span_context().span_id, "016x")
            server_span = pay.start_span("Charge", kind=SpanKind.SERVER, context=set_span_in_context(client))
            names["Charge"] = format(server_span.get_span_context().span_id, "016x")
            time.sleep(0.002)
            server_span.set_status(Status(StatusCode.ERROR, "card declined"))
            server_span.end()
    for p in providers.values():
        p.shutdown()
    return format(root.get_span_context().trace_id, "032x"), names


def test_one_trace_through_every_api(shared_server) -> None:
    trace_id, span_ids = _send_checkout_trace(shared_server)
    base = shared_server.http_url

    # Jaeger legacy: by id, and by search.
    (jt,) = httpx.get(f"{base}/api/traces/{trace_id}").json()["data"]
    assert {s["operationName"]: s["spanID"] for s in jt["spans"]} == span_ids
    assert sorted(p["serviceName"] for p in jt["processes"].values()) == ["apis-payments", "apis-web"]
    charge = next(s for s in jt["spans"] if s["operationName"] == "Charge")
    assert {"key": "error", "type": "bool", "value": True} in charge["tags"]
    found = httpx.get(f"{base}/api/traces", params={"service": "apis-web", "tag": "order.id:o-77"}).json()["data"]
    assert [t["traceID"] for t in found] == [trace_id]
    assert "apis-payments" in httpx.get(f"{base}/api/services").json()["data"]

    # Jaeger api_v3 HTTP: OTLP/JSON.
    v3 = httpx.get(f"{base}/api/v3/traces/{trace_id}").json()["result"]["resourceSpans"]
    v3_spans = {s["name"]: s for rs in v3 for ss in rs["scopeSpans"] for s in ss["spans"]}
    assert {n: s["spanId"] for n, s in v3_spans.items()} == span_ids
    assert v3_spans["Charge"]["status"] == {"code": 2, "message": "card declined"}
    assert v3_spans["Charge"]["parentSpanId"] == span_ids["charge"]

    # Jaeger api_v3 gRPC, on the address the server printed.
    with grpc.insecure_channel(shared_server.addresses["query-grpc"]) as channel:
        stub = query_service_pb2_grpc.QueryServiceStub(channel)
        chunks = list(stub.GetTrace(query_service_pb2.GetTraceRequest(trace_id=trace_id), timeout=30))
        grpc_spans = {s.name: s.span_id.hex() for c in chunks for rs in c.resource_spans
                      for ss in rs.scope_spans for s in ss.spans}
        assert grpc_spans == span_ids
        services = stub.GetServices(query_service_pb2.GetServicesRequest(), timeout=30).services
        assert "apis-web" in services

    # Spanlake's own: analysis with self time and the critical path.
    analysis = httpx.get(f"{base}/api/spanlake/v1/traces/{trace_id}/analysis").json()
    by_name = {s["operation"]: s for s in analysis["spans"]}
    assert set(by_name) == set(span_ids)
    assert analysis["rootService"] == "apis-web" and analysis["errorCount"] == 1
    assert by_name["POST /checkout"]["onCriticalPath"] and by_name["Charge"]["onCriticalPath"]
    for s in analysis["spans"]:
        assert 0 <= s["selfTimeNs"] <= s["durationNs"]
    assert by_name["Charge"]["selfTimeNs"] == by_name["Charge"]["durationNs"]  # a leaf
    view = httpx.get(f"{base}/api/spanlake/v1/traces/{trace_id}").json()
    assert view["spanCount"] == 3 and sorted(view["services"]) == ["apis-payments", "apis-web"]

    # Dependencies come from stored parent/child pairs, with no batch job.
    deps = httpx.get(f"{base}/api/dependencies", params={"endTs": str(time.time_ns() // 10**6 + 60_000)}).json()["data"]
    assert {"parent": "apis-web", "child": "apis-payments", "callCount": 1} in deps
