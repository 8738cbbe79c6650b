"""OTLP receivers over real gRPC and HTTP: fidelity, conformance bodies, and bad input."""

from __future__ import annotations

import gzip
import json
import os

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from spanlake.model import decode_value
from spanlake.storage.api import GetTrace, TraceQuery
from tests.e2e.conftest import open_reader
from tests.e2e.otlp_builders import kv, make_request, make_span

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _grpc_export(server, req, compression=None):
    with grpc.insecure_channel(server.otlp_grpc) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        return stub.Export(req, timeout=30, compression=compression)


def test_every_otlp_field_survives_grpc_with_gzip(shared_server) -> None:
    tid, sid = os.urandom(16), os.urandom(8)
    span = make_span(tid, sid, name="fidelity")
    span.parent_span_id = os.urandom(8)
    span.trace_state = "vendor=abc,other=1"
    span.flags = 0x101
    span.kind = PbSpan.SPAN_KIND_CONSUMER
    span.attributes.extend([kv("s", "text"), kv("b", True), kv("i", -7), kv("d", 2.5), kv("y", b"\x00\xff"),
                            kv("arr", ["x", 1, [True]]), kv("kv", {"inner": {"deep": 1.5}}), kv("empty", None),
                            kv("http.route", "/a/{b}"), kv("http.response.status_code", 503)])
    span.dropped_attributes_count = 3
    ev = span.events.add(time_unix_nano=span.start_time_unix_nano + 5, name="exception", dropped_attributes_count=1)
    ev.attributes.extend([kv("exception.type", "ValueError"), kv("n", 1)])
    span.dropped_events_count = 2
    link = span.links.add(trace_id=os.urandom(16), span_id=os.urandom(8), trace_state="k=v", flags=1,
                          dropped_attributes_count=4)
    link.attributes.extend([kv("link.kind", "retry")])
    span.dropped_links_count = 5
    span.status.code = 2
    span.status.message = "boom"
    req = make_request("fidelity-svc", [span], {"host.name": "h1", "k8s.pod.uid": b"\x01\x02"})
    req.resource_spans[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    req.resource_spans[0].resource.dropped_attributes_count = 6
    scope = req.resource_spans[0].scope_spans[0]
    scope.schema_url = "https://example.com/scope-schema"
    scope.scope.version = "0.0.1"
    scope.scope.attributes.extend([kv("scope.attr", 42)])
    scope.scope.dropped_attributes_count = 7

    resp = _grpc_export(shared_server, req, compression=grpc.Compression.Gzip)
    assert not resp.HasField("partial_success") or resp.partial_success.rejected_spans == 0

    store = open_reader(shared_server.data_dir)
    try:
        (got,) = store.get_trace(GetTrace(tid))
    finally:
        store.close()
    assert got.span_id == sid and got.parent_span_id == span.parent_span_id
    assert (got.trace_state, got.flags, got.kind, got.name) == ("vendor=abc,other=1", 0x101, 5, "fidelity")
    assert {k: decode_value(v) for k, v in got.attributes.items()} == {
        "s": "text", "b": True, "i": -7, "d": 2.5, "y": b"\x00\xff", "arr": ["x", 1, [True]],
        "kv": {"inner": {"deep": 1.5}}, "empty": None, "http.route": "/a/{b}", "http.response.status_code": 503,
    }
    assert got.dropped_attributes_count == 3 and got.dropped_events_count == 2 and got.dropped_links_count == 5
    (e,) = got.events
    assert (e.time_ns, e.name, e.dropped_attributes_count) == (span.start_time_unix_nano + 5, "exception", 1)
    assert {k: decode_value(v) for k, v in e.attributes.items()} == {"exception.type": "ValueError", "n": 1}
    (l,) = got.links
    assert (l.trace_id, l.span_id, l.trace_state, l.flags, l.dropped_attributes_count) == (
        link.trace_id, link.span_id, "k=v", 1, 4)
    assert {k: decode_value(v) for k, v in l.attributes.items()} == {"link.kind": "retry"}
    assert (got.status_code, got.status_message) == (2, "boom")
    assert got.resource.schema_url == "https://opentelemetry.io/schemas/1.26.0"
    assert got.resource.dropped_attributes_count == 6
    assert {k: decode_value(v) for k, v in got.resource.attributes.items()} == {
        "service.name": "fidelity-svc", "host.name": "h1", "k8s.pod.uid": b"\x01\x02"}
    assert (got.scope.name, got.scope.version, got.scope.schema_url, got.scope.dropped_attributes_count) == (
        "builder", "0.0.1", "https://example.com/scope-schema", 7)
    assert {k: decode_value(v) for k, v in got.scope.attributes.items()} == {"scope.attr": 42}


def _json_files(conformance):
    files = sorted((conformance / "otlp").glob("*-sdk/*-traces.json")) + [conformance / "otlp/proto-examples/trace.json"]
    assert len(files) >= 7
    return files


def test_conformance_json_bodies_are_stored(shared_server, conformance) -> None:
    expected: dict[bytes, int] = {}
    for path in _json_files(conformance):
        body = path.read_bytes()
        doc = json.loads(body)
        # The Node SDK sends chunked bodies without Content-Length: stream the body like it does.
        r = httpx.post(shared_server.otlp_http + "/v1/traces", content=iter([body[:100], body[100:]]),
                       headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 200, (path.name, r.text)
        assert r.headers["content-type"].startswith("application/json")
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    tid = bytes.fromhex(sp["traceId"])
                    expected[tid] = expected.get(tid, 0) + 1
    store = open_reader(shared_server.data_dir)
    try:
        for tid, n in expected.items():
            assert len(store.get_trace(GetTrace(tid))) >= n, tid.hex()
        services = set(store.get_services())
    finally:
        store.close()
    assert {"frontend", "orders-api", "web-gateway", "cart-service"} <= services


def test_gzip_protobuf_over_http(shared_server) -> None:
    tid = os.urandom(16)
    req = make_request("http-gzip", [make_span(tid, name="gz")])
    r = httpx.post(shared_server.otlp_http + "/v1/traces", content=gzip.compress(req.SerializeToString()),
                   headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert r.status_code == 200
    resp = trace_service_pb2.ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 0
    store = open_reader(shared_server.data_dir)
    try:
        assert [s.name for s in store.get_trace(GetTrace(tid))] == ["gz"]
    finally:
        store.close()


@pytest.mark.parametrize(
    "body,headers,status,needle",
    [
        (os.urandom(64), PROTOBUF, 400, ""),
        (b"\x0a\xff\xff\xff\x0f\x01", PROTOBUF, 400, ""),  # truncated length-delimited field
        (b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "JSON"),
        (b"\x1f\x8bnot-gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "gzip"),
        (b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}, 415, "Content-Encoding"),
    ],
    ids=["random-bytes", "truncated-protobuf", "wrong-content-type", "malformed-json", "bad-gzip", "unknown-encoding"],
)
def test_bad_http_requests_get_clear_errors(shared_server, body, headers, status, needle) -> None:
    r = httpx.post(shared_server.otlp_http + "/v1/traces", content=body, headers=headers)
    assert r.status_code == status, r.text
    if r.headers["content-type"].startswith("application/json"):
        message = r.json()["message"]
    else:
        from google.rpc import status_pb2

        message = status_pb2.Status.FromString(r.content).message
    assert message and needle.lower() in message.lower()
    # The server keeps serving.
    assert httpx.get(shared_server.http_url + "/healthz").status_code == 200


def test_bad_ids_are_partial_success_and_valid_spans_are_stored(shared_server) -> None:
    good = make_span(os.urandom(16), name="good-one")
    bad_trace = make_span(os.urandom(5), name="bad-trace-id")
    bad_span = make_span(os.urandom(16), span_id=b"\x01\x02", name="bad-span-id")
    req = make_request("partial-svc", [good, bad_trace, bad_span])
    resp = _grpc_export(shared_server, req)
    assert resp.partial_success.rejected_spans == 2
    assert "traceId" in resp.partial_success.error_message or "trace" in resp.partial_success.error_message.lower()

    # Same over HTTP/JSON with hex ids of the wrong length.
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "partial-json"}}]},
           "scopeSpans": [{"spans": [
               {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "ok-json", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
               {"traceId": "abcd", "spanId": "cd" * 8, "name": "short-trace", "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
           ]}]}]}
    r = httpx.post(shared_server.otlp_http + "/v1/traces", json=doc)
    assert r.status_code == 200
    assert int(r.json()["partialSuccess"]["rejectedSpans"]) == 1
    store = open_reader(shared_server.data_dir)
    try:
        assert [s.name for s in store.get_trace(GetTrace(bytes(good.trace_id)))] == ["good-one"]
        assert [s.name for s in store.get_trace(GetTrace(bytes.fromhex("ab" * 16)))] == ["ok-json"]
        names = {f.trace_id for f in store.find_trace_ids(TraceQuery(service_name="partial-svc", limit=10))}
        assert names == {bytes(good.trace_id)}
    finally:
        store.close()


def test_oversized_requests_are_refused(tmp_path) -> None:
    from tests.server import SpanlakeServer

    with SpanlakeServer(tmp_path / "d", "--max-message-size", "64KiB") as server:
        big = make_request("big", [make_span(name="x" * 1000) for _ in range(200)])
        r = httpx.post(server.otlp_http + "/v1/traces", content=big.SerializeToString(), headers=PROTOBUF)
        assert r.status_code == 413
        r = httpx.post(server.otlp_http + "/v1/traces", content=gzip.compress(big.SerializeToString()),
                       headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert r.status_code == 413, "the limit applies after decompression too"
        with pytest.raises(grpc.RpcError) as err:
            _grpc_export(server, big)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        small = make_request("big", [make_span(name="fits")])
        assert _grpc_export(server, small).partial_success.rejected_spans == 0
