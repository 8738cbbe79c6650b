"""The api_v3 gRPC QueryService: every RPC through the generated stub, field by field, and errors.

The server runs on its own event loop in a thread, over a MemoryStore filled through the OTLP
decoder; the tests call it with the generated (synchronous) client stub, as a Jaeger client would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from spanlake.collector.decode_traces import decode_export_trace_request
from spanlake.protos import generate
from spanlake.protos import query_service_pb2 as pb
from spanlake.protos import query_service_pb2_grpc as pb_grpc
from spanlake.query import grpc_api
from spanlake.query.grpc_api import start_query_grpc
from spanlake.query.service import QueryService
from spanlake.storage.memory import MemoryStore

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
S = 1_000_000_000
TRACE_A = bytes.fromhex("aa" * 16)
TRACE_B = bytes.fromhex("bb" * 16)
TRACE_C = bytes.fromhex("00" * 8 + "cc" * 8)  # a 64-bit id
WINDOW = {"start_time_min": T0 - S, "start_time_max": T0 + 10 * S}


# -- building data -------------------------------------------------------------------------------


def kv(key: str, value: str | int) -> common_pb2.KeyValue:
    v = common_pb2.AnyValue(string_value=value) if isinstance(value, str) else common_pb2.AnyValue(int_value=value)
    return common_pb2.KeyValue(key=key, value=v)


def otlp_span(trace: bytes, sid: int, name: str, kind: int, start: int, dur: int, parent: int | None = None,
              attrs: dict | None = None, **extra) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=trace, span_id=sid.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name, kind=kind, start_time_unix_nano=start, end_time_unix_nano=start + dur,
        attributes=[kv(k, v) for k, v in (attrs or {}).items()], **extra,
    )


def resource_spans(service: str, spans: list[trace_pb2.Span]) -> trace_pb2.ResourceSpans:
    return trace_pb2.ResourceSpans(
        resource=resource_pb2.Resource(attributes=[kv("service.name", service)]),
        scope_spans=[trace_pb2.ScopeSpans(scope=common_pb2.InstrumentationScope(name="lib", version="1.0"),
                                          spans=spans)],
    )


FAILING_QUERY = otlp_span(
    TRACE_A, 4, "query", 2, T0 + 30 * MS, 50 * MS, parent=1, attrs={"db.system": "duckdb"},
    status=trace_pb2.Status(code=2, message="boom"),
    events=[trace_pb2.Span.Event(time_unix_nano=T0 + 40 * MS, name="retry", attributes=[kv("attempt", 2)])],
)


def dataset() -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[
        resource_spans("frontend", [
            otlp_span(TRACE_A, 1, "GET /", 2, T0, 100 * MS, attrs={"http.method": "GET", "http.status_code": 200}),
            otlp_span(TRACE_A, 2, "render", 1, T0 + 5 * MS, 10 * MS, parent=1),
            otlp_span(TRACE_A, 3, "legacy", 0, T0 + 20 * MS, 5 * MS, parent=1),
            otlp_span(TRACE_C, 7, "GET /health", 2, T0 + 2 * S, 1 * MS),
        ]),
        resource_spans("backend", [
            FAILING_QUERY,
            otlp_span(TRACE_B, 5, "cron", 1, T0 + S, 5 * MS, attrs={"job": "nightly"}),
        ]),
    ])


def fill(store: MemoryStore, request: ExportTraceServiceRequest) -> None:
    result = decode_export_trace_request(request.SerializeToString())
    assert result.rejected_spans == 0, result.error_message
    store.write_spans(result.batch).result()


# -- the server ----------------------------------------------------------------------------------


class LoopThread:
    """An asyncio loop in a daemon thread, for the grpc.aio server under test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


def serve(loop: LoopThread, store: MemoryStore) -> tuple[pb_grpc.QueryServiceStub, grpc.aio.Server, grpc.Channel]:
    server, port = loop.run(start_query_grpc("127.0.0.1", 0, QueryService(store)))
    assert port > 0
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return pb_grpc.QueryServiceStub(channel), server, channel


@pytest.fixture(scope="module")
def stub(loop: LoopThread) -> Iterator[pb_grpc.QueryServiceStub]:
    store = MemoryStore()
    fill(store, dataset())
    client, server, channel = serve(loop, store)
    yield client
    channel.close()
    loop.run(server.stop(None))
    store.close()


# -- helpers -------------------------------------------------------------------------------------


def ts(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // S, nanos=ns % S)


def dur(ns: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=ns // S, nanos=ns % S)


def params(**kw) -> pb.TraceQueryParameters:
    times = {k: ts(kw.pop(k, WINDOW[k])) for k in WINDOW}
    for k in ("duration_min", "duration_max"):
        if k in kw:
            kw[k] = dur(kw[k])
    return pb.TraceQueryParameters(**times, **kw)


def spans_of(chunks: list[trace_pb2.TracesData]) -> list[tuple[str, str, str, trace_pb2.Span]]:
    """(service.name, scope name, scope version, span) of every span in a stream."""
    out = []
    for chunk in chunks:
        for rs in chunk.resource_spans:
            service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
            for ss in rs.scope_spans:
                out.extend((service, ss.scope.name, ss.scope.version, s) for s in ss.spans)
    return out


def trace_ids(chunks: list[trace_pb2.TracesData]) -> list[bytes]:
    ids: list[bytes] = []
    for *_, span in spans_of(chunks):
        if span.trace_id not in ids:
            ids.append(span.trace_id)
    return ids


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if not isinstance(result, pb.GetServicesResponse | pb.GetOperationsResponse | pb.DependenciesResponse):
            list(result)
    return info.value


# -- GetTrace ------------------------------------------------------------------------------------


def test_get_trace_raw_returns_every_span_field_by_field(stub) -> None:
    chunks = list(stub.GetTrace(pb.GetTraceRequest(trace_id="aa" * 16, raw_traces=True)))
    assert chunks and all(isinstance(c, trace_pb2.TracesData) for c in chunks)
    spans = {s.span_id: (svc, scope, version, s) for svc, scope, version, s in spans_of(chunks)}
    assert sorted(int.from_bytes(k, "big") for k in spans) == [1, 2, 3, 4]
    svc, scope, version, span = spans[(4).to_bytes(8, "big")]
    assert (svc, scope, version) == ("backend", "lib", "1.0")
    assert span.trace_id == TRACE_A
    assert span.parent_span_id == (1).to_bytes(8, "big")
    assert span.name == "query"
    assert span.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == T0 + 30 * MS
    assert span.end_time_unix_nano == T0 + 80 * MS
    assert {a.key: a.value.string_value for a in span.attributes} == {"db.system": "duckdb"}
    assert span.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert span.status.message == "boom"
    assert [(e.name, e.time_unix_nano) for e in span.events] == [("retry", T0 + 40 * MS)]
    assert [(a.key, a.value.int_value) for a in span.events[0].attributes] == [("attempt", 2)]
    _, _, _, root = spans[(1).to_bytes(8, "big")]
    assert root.parent_span_id == b""
    assert {a.key: a.value for a in root.attributes} == {
        "http.method": common_pb2.AnyValue(string_value="GET"),
        "http.status_code": common_pb2.AnyValue(int_value=200),
    }
    assert spans[(3).to_bytes(8, "big")][3].kind == trace_pb2.Span.SPAN_KIND_UNSPECIFIED


def test_get_trace_adjusted_and_with_time_hint(stub) -> None:
    adjusted = list(stub.GetTrace(pb.GetTraceRequest(trace_id="aa" * 16)))
    assert trace_ids(adjusted) == [TRACE_A]
    assert len(spans_of(adjusted)) == 4
    hinted = list(stub.GetTrace(pb.GetTraceRequest(trace_id="aa" * 16, start_time=ts(T0 - S),
                                                   end_time=ts(T0 + S), raw_traces=True)))
    assert len(spans_of(hinted)) == 4


def test_get_trace_accepts_64_bit_and_unpadded_ids(stub) -> None:
    for text in ("cc" * 8, "00" * 8 + "cc" * 8, "CC" * 8):
        chunks = list(stub.GetTrace(pb.GetTraceRequest(trace_id=text)))
        assert trace_ids(chunks) == [TRACE_C], text


def test_get_trace_unknown_is_not_found(stub) -> None:
    err = rpc_error(lambda: stub.GetTrace(pb.GetTraceRequest(trace_id="ee" * 16)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "trace not found"


@pytest.mark.parametrize("trace_id", ["", "zz", "a" * 33, "aa-bb"])
def test_get_trace_malformed_id(stub, trace_id: str) -> None:
    err = rpc_error(lambda: stub.GetTrace(pb.GetTraceRequest(trace_id=trace_id)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "trace_id" in err.details()


def test_get_trace_end_before_start(stub) -> None:
    err = rpc_error(lambda: stub.GetTrace(pb.GetTraceRequest(trace_id="aa" * 16, start_time=ts(T0),
                                                             end_time=ts(T0 - 1))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "end_time" in err.details()


def test_get_trace_large_trace_streams_in_chunks(stub, monkeypatch) -> None:
    monkeypatch.setattr(grpc_api, "MAX_CHUNK_BYTES", 200)  # the server reads it per call
    chunks = list(stub.GetTrace(pb.GetTraceRequest(trace_id="aa" * 16, raw_traces=True)))
    assert len(chunks) > 1
    assert sorted(int.from_bytes(s.span_id, "big") for *_, s in spans_of(chunks)) == [1, 2, 3, 4]


# -- FindTraces ----------------------------------------------------------------------------------


def find(stub, **kw) -> list[trace_pb2.TracesData]:
    return list(stub.FindTraces(pb.FindTracesRequest(query=params(**kw))))


def test_find_traces_by_service_most_recent_first(stub) -> None:
    assert trace_ids(find(stub, service_name="frontend")) == [TRACE_C, TRACE_A]
    chunks = find(stub, service_name="backend", operation_name="cron", raw_traces=True)
    assert trace_ids(chunks) == [TRACE_B]
    (svc, _, _, span), = spans_of(chunks)
    assert (svc, span.name, span.start_time_unix_nano) == ("backend", "cron", T0 + S)


def test_find_traces_streams_whole_traces(stub) -> None:
    chunks = find(stub, service_name="backend", operation_name="query")
    assert trace_ids(chunks) == [TRACE_A]
    assert len(spans_of(chunks)) == 4  # every span of the trace, not just the matching one


def test_find_traces_attributes_durations_depth(stub) -> None:
    assert trace_ids(find(stub, attributes={"http.method": "GET"})) == [TRACE_A]
    assert trace_ids(find(stub, attributes={"http.method": "GET", "job": "nightly"})) == []
    assert trace_ids(find(stub, attributes={"job": "nightly"})) == [TRACE_B]
    assert trace_ids(find(stub, service_name="backend", duration_min=40 * MS)) == [TRACE_A]
    assert trace_ids(find(stub, service_name="backend", duration_max=10 * MS)) == [TRACE_B]
    assert trace_ids(find(stub, duration_min=2 * MS, duration_max=6 * MS)) == [TRACE_B, TRACE_A]
    assert trace_ids(find(stub, search_depth=1)) == [TRACE_C]
    assert trace_ids(find(stub, search_depth=2)) == [TRACE_C, TRACE_B]


def test_find_traces_time_window_is_min_inclusive_max_exclusive(stub) -> None:
    assert trace_ids(find(stub, start_time_min=T0 + S, start_time_max=T0 + 2 * S)) == [TRACE_B]


def test_find_traces_no_match_is_an_empty_stream(stub) -> None:
    assert find(stub, service_name="nobody") == []


def test_find_traces_go_zero_values_mean_not_given(stub) -> None:
    # Jaeger's Go client always sends its non-nullable durations (zero when unset).
    q = params(service_name="backend")
    q.duration_min.CopyFrom(duration_pb2.Duration())
    q.duration_max.CopyFrom(duration_pb2.Duration())
    assert trace_ids(list(stub.FindTraces(pb.FindTracesRequest(query=q)))) == [TRACE_B, TRACE_A]
    q.start_time_min.CopyFrom(timestamp_pb2.Timestamp(seconds=-62135596800))
    err = rpc_error(lambda: stub.FindTraces(pb.FindTracesRequest(query=q)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time_min" in err.details()


def _without(field: str) -> pb.TraceQueryParameters:
    q = params()
    q.ClearField(field)
    return q


def _with_filter() -> pb.TraceQueryParameters:
    # Field 10 (`filter`, a jaeger.expression.v1.Call) as a Jaeger client would encode it.
    call = b"\x0a\x02eq"  # Call{op: "eq"}
    return pb.TraceQueryParameters.FromString(params().SerializeToString() + b"\x52" + bytes([len(call)]) + call)


INVALID_QUERIES = [
    ("missing query", None, "missing query"),
    ("no start_time_min", _without("start_time_min"), "start_time_min"),
    ("no start_time_max", _without("start_time_max"), "start_time_max"),
    ("max before min", params(start_time_min=T0, start_time_max=T0 - 1), "start_time_max"),
    ("empty window", params(start_time_min=T0, start_time_max=T0), "start_time_max"),
    ("negative depth", params(search_depth=-1), "search_depth"),
    ("negative duration", pb.TraceQueryParameters(
        start_time_min=ts(T0), start_time_max=ts(T0 + S), duration_min=duration_pb2.Duration(seconds=-1)),
     "duration_min"),
    ("min above max", params(duration_min=2 * MS, duration_max=MS), "duration_max"),
    ("bad nanos", pb.TraceQueryParameters(start_time_min=timestamp_pb2.Timestamp(seconds=1, nanos=-5),
                                          start_time_max=ts(T0)), "start_time_min"),
    ("filter", _with_filter(), "filter"),
]


@pytest.mark.parametrize("query, word", [c[1:] for c in INVALID_QUERIES], ids=[c[0] for c in INVALID_QUERIES])
def test_find_traces_and_summaries_refuse_invalid_queries(stub, query, word: str) -> None:
    for method, request_type in ((stub.FindTraces, pb.FindTracesRequest),
                                 (stub.FindTraceSummaries, pb.FindTraceSummariesRequest)):
        request = request_type() if query is None else request_type(query=query)
        err = rpc_error(lambda: method(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert word in err.details()


# -- FindTraceSummaries --------------------------------------------------------------------------


def test_find_trace_summaries_field_by_field(stub) -> None:
    chunks = list(stub.FindTraceSummaries(pb.FindTraceSummariesRequest(query=params())))
    summaries = [s for c in chunks for s in c.summaries]
    assert [s.trace_id for s in summaries] == ["00" * 8 + "cc" * 8, "bb" * 16, "aa" * 16]
    a = summaries[2]
    assert a.root_service_name == "frontend"
    assert a.root_operation_name == "GET /"
    assert a.min_start_time_unix_nano == T0
    assert a.max_end_time_unix_nano == T0 + 100 * MS
    assert a.span_count == 4
    assert a.error_span_count == 1
    assert a.orphan_span_count == 0
    assert [(s.name, s.span_count, s.error_span_count) for s in a.services] == [
        ("backend", 1, 1), ("frontend", 3, 0)]


def test_find_trace_summaries_no_match_is_an_empty_stream(stub) -> None:
    assert list(stub.FindTraceSummaries(pb.FindTraceSummariesRequest(query=params(service_name="x")))) == []


def test_find_trace_summaries_chunks(stub, monkeypatch) -> None:
    monkeypatch.setattr(grpc_api, "SUMMARIES_PER_CHUNK", 2)
    chunks = list(stub.FindTraceSummaries(pb.FindTraceSummariesRequest(query=params())))
    assert [len(c.summaries) for c in chunks] == [2, 1]


# -- GetServices, GetOperations, GetDependencies -------------------------------------------------


def test_get_services(stub) -> None:
    assert list(stub.GetServices(pb.GetServicesRequest()).services) == ["backend", "frontend"]


def test_get_operations_kinds_as_jaeger_returns_them(stub) -> None:
    ops = stub.GetOperations(pb.GetOperationsRequest(service="frontend")).operations
    assert [(o.name, o.span_kind) for o in ops] == [
        ("GET /", "server"), ("GET /health", "server"), ("legacy", ""), ("render", "internal")]
    for kind in ("server", "SERVER", "SPAN_KIND_SERVER"):
        ops = stub.GetOperations(pb.GetOperationsRequest(service="frontend", span_kind=kind)).operations
        assert [(o.name, o.span_kind) for o in ops] == [("GET /", "server"), ("GET /health", "server")]
    ops = stub.GetOperations(pb.GetOperationsRequest(service="frontend", span_kind="unspecified")).operations
    assert [(o.name, o.span_kind) for o in ops] == [("legacy", "")]
    assert list(stub.GetOperations(pb.GetOperationsRequest(service="nobody")).operations) == []


@pytest.mark.parametrize("request_, word", [
    (pb.GetOperationsRequest(), "service"),
    (pb.GetOperationsRequest(service="frontend", span_kind="sideways"), "span_kind"),
])
def test_get_operations_invalid(stub, request_, word: str) -> None:
    err = rpc_error(lambda: stub.GetOperations(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in err.details()


def test_get_dependencies(stub) -> None:
    deps = stub.GetDependencies(pb.GetDependenciesRequest(start_time=ts(T0 - S), end_time=ts(T0 + 10 * S)))
    assert [(d.parent, d.child, d.call_count) for d in deps.dependencies] == [("frontend", "backend", 1)]
    empty = stub.GetDependencies(pb.GetDependenciesRequest(start_time=ts(T0 + S), end_time=ts(T0 + 10 * S)))
    assert list(empty.dependencies) == []


@pytest.mark.parametrize("request_, word", [
    (pb.GetDependenciesRequest(end_time=ts(T0)), "start_time"),
    (pb.GetDependenciesRequest(start_time=ts(T0)), "end_time"),
    (pb.GetDependenciesRequest(start_time=ts(T0), end_time=ts(T0)), "end_time"),
])
def test_get_dependencies_invalid(stub, request_, word: str) -> None:
    err = rpc_error(lambda: stub.GetDependencies(request_))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert word in err.details()


# -- server lifecycle and store failures ---------------------------------------------------------


def test_closed_store_is_unavailable(loop) -> None:
    store = MemoryStore()
    client, server, channel = serve(loop, store)
    try:
        store.close()
        err = rpc_error(lambda: client.GetServices(pb.GetServicesRequest()))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        err = rpc_error(lambda: client.FindTraces(pb.FindTracesRequest(query=params())))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        channel.close()
        loop.run(server.stop(None))


def test_busy_port_fails_to_start(loop) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=str(port)):
            loop.run(start_query_grpc("127.0.0.1", port, QueryService(MemoryStore())))


# -- the .proto and its generated code -----------------------------------------------------------

# Jaeger's jaeger-idl proto/api_v3/query_service.proto: message -> (field, number, type, repeated).
F = pb.TraceQueryParameters.DESCRIPTOR.fields_by_name["service_name"]
STR, BOOL, MSG, I32, U64, FX64 = F.TYPE_STRING, F.TYPE_BOOL, F.TYPE_MESSAGE, F.TYPE_INT32, F.TYPE_UINT64, F.TYPE_FIXED64
ONE, MANY = False, True
JAEGER_FIELDS = {
    "GetTraceRequest": [("trace_id", 1, STR, ONE), ("start_time", 2, MSG, ONE), ("end_time", 3, MSG, ONE),
                        ("raw_traces", 4, BOOL, ONE)],
    "TraceQueryParameters": [("service_name", 1, STR, ONE), ("operation_name", 2, STR, ONE),
                             ("attributes", 3, MSG, MANY), ("start_time_min", 4, MSG, ONE),
                             ("start_time_max", 5, MSG, ONE), ("duration_min", 6, MSG, ONE),
                             ("duration_max", 7, MSG, ONE), ("search_depth", 8, I32, ONE),
                             ("raw_traces", 9, BOOL, ONE)],
    "FindTracesRequest": [("query", 1, MSG, ONE)],
    "GetServicesRequest": [],
    "GetServicesResponse": [("services", 1, STR, MANY)],
    "GetOperationsRequest": [("service", 1, STR, ONE), ("span_kind", 2, STR, ONE)],
    "Operation": [("name", 1, STR, ONE), ("span_kind", 2, STR, ONE)],
    "GetOperationsResponse": [("operations", 1, MSG, MANY)],
    "GetDependenciesRequest": [("start_time", 1, MSG, ONE), ("end_time", 2, MSG, ONE)],
    "DependenciesResponse": [("dependencies", 1, MSG, MANY)],
    "Dependency": [("parent", 1, STR, ONE), ("child", 2, STR, ONE), ("call_count", 3, U64, ONE)],
    "ServiceSummary": [("name", 1, STR, ONE), ("span_count", 2, I32, ONE), ("error_span_count", 3, I32, ONE)],
    "TraceSummary": [("trace_id", 1, STR, ONE), ("root_service_name", 2, STR, ONE),
                     ("root_operation_name", 3, STR, ONE), ("min_start_time_unix_nano", 4, FX64, ONE),
                     ("max_end_time_unix_nano", 5, FX64, ONE), ("span_count", 6, I32, ONE),
                     ("error_span_count", 7, I32, ONE), ("orphan_span_count", 8, I32, ONE),
                     ("services", 9, MSG, MANY)],
    "FindTraceSummariesRequest": [("query", 1, MSG, ONE)],
    "FindTraceSummariesResponse": [("summaries", 1, MSG, MANY)],
}
JAEGER_METHODS = {  # name -> (request, response, server streaming)
    "GetTrace": ("jaeger.api_v3.GetTraceRequest", "opentelemetry.proto.trace.v1.TracesData", True),
    "FindTraces": ("jaeger.api_v3.FindTracesRequest", "opentelemetry.proto.trace.v1.TracesData", True),
    "GetServices": ("jaeger.api_v3.GetServicesRequest", "jaeger.api_v3.GetServicesResponse", False),
    "GetOperations": ("jaeger.api_v3.GetOperationsRequest", "jaeger.api_v3.GetOperationsResponse", False),
    "GetDependencies": ("jaeger.api_v3.GetDependenciesRequest", "jaeger.api_v3.DependenciesResponse", False),
    "FindTraceSummaries": ("jaeger.api_v3.FindTraceSummariesRequest",
                           "jaeger.api_v3.FindTraceSummariesResponse", True),
}


def test_proto_matches_jaegers_wire_format() -> None:
    file = pb.DESCRIPTOR
    assert file.package == "jaeger.api_v3"
    for name, fields in JAEGER_FIELDS.items():
        msg = file.message_types_by_name[name]
        got = [(f.name, f.number, f.type, f.is_repeated) for f in sorted(msg.fields, key=lambda f: f.number)]
        assert got == fields, name
    tq = file.message_types_by_name["TraceQueryParameters"]
    assert tq.fields_by_name["attributes"].message_type.GetOptions().map_entry
    assert tq.fields_by_name["start_time_min"].message_type.full_name == "google.protobuf.Timestamp"
    assert tq.fields_by_name["duration_min"].message_type.full_name == "google.protobuf.Duration"
    service = file.services_by_name["QueryService"]
    assert service.full_name == "jaeger.api_v3.QueryService"
    got = {m.name: (m.input_type.full_name, m.output_type.full_name, m.server_streaming) for m in service.methods}
    assert got == JAEGER_METHODS
    assert not any(m.client_streaming for m in service.methods)


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    try:
        import grpc_tools  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("grpcio-tools is not installed (pip install -e '.[test]')")
    written = generate.generate(tmp_path)
    assert [p.name for p in written] == generate.generated_names()
    stale = [p.name for p in written if p.read_bytes() != (generate.PROTOS_DIR / p.name).read_bytes()]
    assert not stale, f"{stale} are stale: run `python protos/generate.py` with the pinned grpcio-tools"
