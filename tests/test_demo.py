"""The demo traffic generator, end to end through a real OTLP/gRPC receiver."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, defaultdict
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Iterator

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from spanlake.demo import DemoTraffic

SEED = 7
REQUESTS = 200


class _Sink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self._lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 (gRPC method name)
        with self._lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@dataclass
class Received:
    service: str
    resource: dict[str, Any]
    scope: str
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    name: str
    kind: int
    start: int
    end: int
    attributes: dict[str, Any]
    error: bool
    events: list[str] = field(default_factory=list)
    links: list[tuple[bytes, bytes]] = field(default_factory=list)


def _value(v: AnyValue) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


def _attrs(kvs) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _flatten(sink: _Sink) -> list[Received]:
    spans = []
    for request in sink.requests:
        for rs in request.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(Received(
                        resource["service.name"], resource, ss.scope.name, s.trace_id, s.span_id,
                        s.parent_span_id, s.name, s.kind, s.start_time_unix_nano,
                        s.end_time_unix_nano, _attrs(s.attributes),
                        s.status.code == PbStatus.STATUS_CODE_ERROR,
                        [e.name for e in s.events], [(l.trace_id, l.span_id) for l in s.links]))
    return spans


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, _Sink]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    sink = _Sink()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", sink
    finally:
        server.stop(grace=None)


def _run(receiver: tuple[str, _Sink], requests: int, seed: int) -> tuple[DemoTraffic,
                                                                          list[Received]]:
    endpoint, sink = receiver
    sink.requests.clear()
    demo = DemoTraffic(endpoint, seed=seed)
    try:
        demo.run_for(requests)
    finally:
        demo.stop()
    return demo, _flatten(sink)


@pytest.fixture(scope="module")
def demo_run(receiver) -> tuple[DemoTraffic, list[Received]]:
    return _run(receiver, REQUESTS, SEED)


@pytest.fixture(scope="module")
def spans(demo_run) -> list[Received]:
    return demo_run[1]


@pytest.fixture(scope="module")
def by_id(spans) -> dict[tuple[bytes, bytes], Received]:
    return {(s.trace_id, s.span_id): s for s in spans}


@pytest.fixture(scope="module")
def traces(spans) -> dict[bytes, list[Received]]:
    grouped = defaultdict(list)
    for s in spans:
        grouped[s.trace_id].append(s)
    return grouped


def _parent(span: Received, by_id) -> Received | None:
    return by_id.get((span.trace_id, span.parent_id)) if span.parent_id else None


def _roots(spans: list[Received]) -> list[Received]:
    return [s for s in spans if not s.parent_id]


def test_every_span_created_is_received(demo_run):
    demo, spans = demo_run
    assert demo.requests_sent == REQUESTS
    assert len(spans) == demo.spans_created
    assert len({s.trace_id for s in spans}) == demo.traces_created
    assert 10 <= demo.spans_created / REQUESTS <= 40


def test_services_are_separate_resources(spans):
    services = {s.service for s in spans}
    assert len(services) >= 8
    for s in spans:
        assert s.resource["service.namespace"] == "shop"
        assert s.resource["deployment.environment.name"] == "demo"
        assert s.resource["service.version"] and s.resource["host.name"] and s.resource["host.id"]
        assert s.resource["telemetry.sdk.language"] == "python"
    hosts = {s.service: s.resource["host.name"] for s in spans}
    assert len(set(hosts.values())) == len(services)


def test_tree_depth(traces, by_id):
    def depth(span: Received) -> int:
        parent = _parent(span, by_id)
        return 1 if parent is None else 1 + depth(parent)

    depths = [max(depth(s) for s in trace) for trace in traces.values()]
    assert 3 <= max(depths) <= 8
    assert sum(d > 3 for d in depths) > 0.6 * len(depths)


def test_no_orphans_and_one_root_per_trace(spans, traces, by_id):
    assert all(_parent(s, by_id) is not None for s in spans if s.parent_id)
    assert all(len(_roots(trace)) == 1 for trace in traces.values())


def test_cross_service_server_spans_have_client_parents(spans, by_id):
    cross = 0
    for s in spans:
        parent = _parent(s, by_id)
        if s.kind == PbSpan.SPAN_KIND_SERVER and parent and parent.service != s.service:
            cross += 1
            assert parent.kind == PbSpan.SPAN_KIND_CLIENT, (s.name, parent.name)
            assert parent.attributes["peer.service"] == s.service
    assert cross > REQUESTS


def test_semantic_convention_attributes(spans):
    http_server = [s for s in spans
                   if s.kind == PbSpan.SPAN_KIND_SERVER and "http.route" in s.attributes]
    assert http_server
    for s in http_server:
        assert s.name == f"{s.attributes['http.request.method']} {s.attributes['http.route']}"
        assert {"url.path", "server.address", "network.peer.address", "user_agent.original",
                "http.response.status_code"} <= s.attributes.keys()
    rpc = [s for s in spans if s.attributes.get("rpc.system") == "grpc"]
    assert {s.attributes["rpc.service"] for s in rpc} >= {"payment.v1.PaymentService",
                                                          "auth.v1.AuthService"}
    assert {s.kind for s in rpc} == {PbSpan.SPAN_KIND_CLIENT, PbSpan.SPAN_KIND_SERVER}
    roots = [s for s in _roots(spans) if s.kind == PbSpan.SPAN_KIND_SERVER]
    assert all("client.address" in s.attributes and "enduser.id" not in s.attributes
               for s in roots)
    assert any("enduser.id" in s.attributes for s in spans)
    assert any("app.product.id" in s.attributes for s in spans)
    # legacy-instrumented services use the old names
    assert any("http.method" in s.attributes for s in spans)
    assert any("db.statement" in s.attributes for s in spans)


def test_database_and_cache_spans(spans):
    db = [s for s in spans if "db.system" in s.attributes]
    systems = Counter(s.attributes["db.system"] for s in db)
    assert systems["postgresql"] > 0 and systems["redis"] > 0
    for s in db:
        assert s.kind == PbSpan.SPAN_KIND_CLIENT
        assert s.attributes["peer.service"] in ("postgres", "redis")
        a = s.attributes
        assert ("db.namespace" in a or "db.name" in a)
        assert ("db.query.text" in a or "db.statement" in a)
        assert ("server.address" in a or "net.peer.name" in a)


def test_queue_hop_links_consumer_to_producer_in_another_trace(spans, by_id):
    producers = [s for s in spans if s.kind == PbSpan.SPAN_KIND_PRODUCER]
    consumers = [s for s in spans if s.kind == PbSpan.SPAN_KIND_CONSUMER]
    assert producers and consumers
    for c in consumers:
        assert not c.parent_id  # a new trace
        assert len(c.links) == 1
        producer = by_id[c.links[0]]
        assert producer.kind == PbSpan.SPAN_KIND_PRODUCER
        assert producer.trace_id != c.trace_id
        assert producer.service != c.service
        assert c.attributes["messaging.destination.name"] == \
            producer.attributes["messaging.destination.name"] == "order-events"
        assert c.attributes["messaging.system"] == "kafka"
        assert c.attributes["messaging.operation"] == "process"
        assert producer.attributes["messaging.operation"] == "publish"
        assert c.start >= producer.start


def test_error_rate_and_exception_events(spans, traces):
    roots = _roots(spans)
    failed = [r for r in roots if r.error]
    assert 0.005 <= len(failed) / len(roots) <= 0.05
    errors = [s for s in spans if s.error]
    for s in errors:
        # HTTP clients only see a 5xx response; everything else records the exception
        status = s.attributes.get("http.response.status_code", s.attributes.get("http.status_code"))
        if s.kind == PbSpan.SPAN_KIND_CLIENT and status is not None and status >= 500:
            assert "exception" not in s.events
        else:
            assert "exception" in s.events, s.name
        assert "error.type" in s.attributes
    for root in failed:  # the error is propagated from where it happened up to the root
        trace = traces[root.trace_id]
        assert any("exception" in s.events for s in trace)
    # some failures are tolerated (e.g. a cache timeout falls back to the database)
    assert any(not any(r.error for r in _roots(traces[s.trace_id])) for s in errors)


def test_children_within_parent_bounds(spans, by_id):
    for s in spans:
        assert s.start <= s.end
        parent = _parent(s, by_id)
        if parent is not None:
            assert parent.start <= s.start and s.end <= parent.end, (parent.name, s.name)


def test_requests_end_around_now(spans):
    now = time.time_ns()
    assert all(s.end <= now for s in spans)
    assert min(s.start for s in spans) > now - 120 * 10**9


def test_slow_tail(spans):
    durations = [r.end - r.start for r in _roots(spans) if r.kind == PbSpan.SPAN_KIND_SERVER]
    q = statistics.quantiles(durations, n=100)
    assert q[98] >= 3 * q[49]


def test_same_seed_same_traffic(receiver):
    def shape(spans: list[Received]) -> list[tuple[str, str, int, bool]]:
        return sorted((s.service, s.name, s.kind, s.error) for s in spans)

    a, spans_a = _run(receiver, 30, seed=11)
    b, spans_b = _run(receiver, 30, seed=11)
    c, spans_c = _run(receiver, 30, seed=12)
    assert shape(spans_a) == shape(spans_b)
    assert shape(spans_a) != shape(spans_c)


def test_background_thread_start_stop(receiver):
    endpoint, sink = receiver
    sink.requests.clear()
    demo = DemoTraffic(endpoint, rate=50.0, seed=3)
    demo.start()
    demo.start()  # already running: no-op
    deadline = time.monotonic() + 5
    while demo.requests_sent < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    demo.stop()
    demo.stop()  # idempotent
    assert demo.requests_sent >= 5
    assert len(_flatten(sink)) == demo.spans_created
    with pytest.raises(RuntimeError):
        demo.start()
    with pytest.raises(RuntimeError):
        demo.run_for(1)
