"""OTLP log receivers over real gRPC and HTTP: fidelity, conformance bodies, bad input, limits,
back-pressure and durability, with the same rules as traces."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
from concurrent.futures import Future

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from spanlake.collector.grpc_server import start_grpc_receiver
from spanlake.collector.http_server import create_otlp_http_app
from spanlake.collector.signals import log_ingest, logs_signal
from spanlake.model import decode_value
from spanlake.storage.api import LogQuery, StoreClosed, WriteQueueFull
from tests.e2e.conftest import open_reader
from tests.logs.otlp_logs import make_log, make_logs_request
from tests.server import SpanlakeServer

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def _grpc_export(server, req, compression=None):
    with grpc.insecure_channel(server.otlp_grpc) as channel:
        return logs_service_pb2_grpc.LogsServiceStub(channel).Export(req, timeout=30, compression=compression)


def _trace_logs(server, trace_id: bytes):
    store = open_reader(server.data_dir)
    try:
        return store.logs_for_trace(trace_id)
    finally:
        store.close()


def test_every_field_survives_grpc_with_gzip(shared_server) -> None:
    tid, sid = os.urandom(16), os.urandom(8)
    record = make_log({"event": "checkout", "items": [1, 2]}, severity=17, severity_text="ERROR", trace_id=tid,
                      span_id=sid, flags=1, event_name="app.checkout",
                      attrs={"s": "text", "i": -7, "d": 2.5, "b": True, "y": b"\x00\xff", "arr": ["x", 1]})
    record.dropped_attributes_count = 2
    req = make_logs_request("log-fidelity", [record], {"host.name": "h1"})
    req.resource_logs[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    req.resource_logs[0].scope_logs[0].scope.version = "0.0.1"
    req.resource_logs[0].scope_logs[0].schema_url = "https://example.com/scope"
    resp = _grpc_export(shared_server, req, compression=grpc.Compression.Gzip)
    assert not resp.HasField("partial_success")

    (got,) = _trace_logs(shared_server, tid)
    assert (got.time_ns, got.observed_time_ns) == (record.time_unix_nano, record.observed_time_unix_nano)
    assert (got.severity_number, got.severity_text, got.flags, got.event_name) == (17, "ERROR", 1, "app.checkout")
    assert (got.trace_id, got.span_id, got.dropped_attributes_count) == (tid, sid, 2)
    assert decode_value(got.body) == {"event": "checkout", "items": [1, 2]}
    assert {k: decode_value(v) for k, v in got.attributes.items()} == {
        "s": "text", "i": -7, "d": 2.5, "b": True, "y": b"\x00\xff", "arr": ["x", 1]}
    assert got.service_name == "log-fidelity" and got.resource.schema_url.endswith("1.26.0")
    assert (got.scope.name, got.scope.version, got.scope.schema_url) == ("log-builder", "0.0.1", "https://example.com/scope")


def _conformance_files(conformance):
    files = sorted((conformance / "otlp").glob("*-sdk/*-logs.json"))
    files += [conformance / "otlp/proto-examples/logs.json", conformance / "otlp/proto-examples/events.json"]
    assert len(files) >= 8
    return files


def test_conformance_json_bodies_are_stored(shared_server, conformance) -> None:
    expected: dict[bytes, int] = {}
    uncorrelated = 0
    for path in _conformance_files(conformance):
        body = path.read_bytes()
        # Chunked, without Content-Length, as the Node SDK sends it.
        r = httpx.post(shared_server.otlp_http + "/v1/logs", content=iter([body[:100], body[100:]]), headers=JSON,
                       timeout=30)
        assert r.status_code == 200, (path.name, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert "partialSuccess" not in r.json() or not r.json()["partialSuccess"].get("rejectedLogRecords")
        for rl in json.loads(body)["resourceLogs"]:
            for sl in rl["scopeLogs"]:
                for rec in sl["logRecords"]:
                    if rec.get("traceId"):
                        tid = bytes.fromhex(rec["traceId"])
                        expected[tid] = expected.get(tid, 0) + 1
                    else:
                        uncorrelated += 1
    assert uncorrelated == 1  # the event
    store = open_reader(shared_server.data_dir)
    try:
        for tid, n in expected.items():
            assert len(store.logs_for_trace(tid)) >= n, tid.hex()
        page = store.search_logs(LogQuery(attributes=(("event.name", "browser.page_view"),)))
    finally:
        store.close()
    (event,) = page.records
    assert event.service_name == "my.service" and event.time_ns == 1544712660300000000
    assert decode_value(event.body)["url"] == "https://www.guidgenerator.com/online-guid-generator.aspx"


def test_gzip_protobuf_over_http_with_protobuf_reply(shared_server) -> None:
    tid = os.urandom(16)
    req = make_logs_request("log-http-gzip", [make_log("zipped", trace_id=tid)])
    r = httpx.post(shared_server.otlp_http + "/v1/logs", content=gzip.compress(req.SerializeToString()),
                   headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    resp = logs_service_pb2.ExportLogsServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_log_records == 0
    assert [decode_value(x.body) for x in _trace_logs(shared_server, tid)] == ["zipped"]


@pytest.mark.parametrize(
    "body,headers,status,needle",
    [
        (os.urandom(64), PROTOBUF, 400, ""),
        (b"\x0a\xff\xff\xff\x0f\x01", PROTOBUF, 400, ""),
        (b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type"),
        (b"{not json", JSON, 400, "JSON"),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "x"}]}]}]}', JSON, 400, "timeUnixNano"),
        (b"\x1f\x8bnot-gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "gzip"),
        (b"{}", {**JSON, "Content-Encoding": "br"}, 415, "Content-Encoding"),
    ],
    ids=["random-bytes", "truncated-protobuf", "wrong-content-type", "malformed-json", "bad-field-type", "bad-gzip",
         "unknown-encoding"],
)
def test_bad_http_requests_get_clear_errors(shared_server, body, headers, status, needle) -> None:
    r = httpx.post(shared_server.otlp_http + "/v1/logs", content=body, headers=headers)
    assert r.status_code == status, r.text
    if r.headers["content-type"].startswith("application/json"):
        message = r.json()["message"]
    else:
        message = status_pb2.Status.FromString(r.content).message
    assert message and needle.lower() in message.lower()


def test_bad_grpc_request_is_invalid_argument(shared_server) -> None:
    with grpc.insecure_channel(shared_server.otlp_grpc) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        with pytest.raises(grpc.RpcError) as err:
            export(b"\x0a\xff\xff\xff\x0f\x01", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_records_are_partial_success_and_valid_ones_are_stored(shared_server) -> None:
    good_tid = os.urandom(16)
    req = make_logs_request("log-partial", [make_log("good", trace_id=good_tid),
                                            make_log("bad", trace_id=os.urandom(5)),
                                            make_log("bad too", span_id=b"\x01\x02")])
    resp = _grpc_export(shared_server, req)
    assert resp.partial_success.rejected_log_records == 2
    assert "logRecords[1].traceId is 5 bytes" in resp.partial_success.error_message

    json_tid = os.urandom(16)
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "log-partial"}}]},
           "scopeLogs": [{"logRecords": [
               {"traceId": json_tid.hex(), "body": {"stringValue": "ok-json"}},
               {"traceId": "zz" * 16, "body": {"stringValue": "not hex"}},
           ]}]}]}
    r = httpx.post(shared_server.otlp_http + "/v1/logs", json=doc)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedLogRecords"]) == 1 and "is not a hex string" in partial["errorMessage"]
    assert [decode_value(x.body) for x in _trace_logs(shared_server, good_tid)] == ["good"]
    assert [decode_value(x.body) for x in _trace_logs(shared_server, json_tid)] == ["ok-json"]


def _metrics(server) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(httpx.get(server.http_url + "/metrics").text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_count_log_records_apart_from_spans(shared_server) -> None:
    def grpc_series(name: str, **labels: str) -> tuple[str, tuple]:
        return name, tuple(sorted({"protocol": "grpc", **labels}.items()))

    watched = [
        grpc_series("spanlake_receiver_log_records_received_total"),
        grpc_series("spanlake_receiver_log_records_accepted_total"),
        grpc_series("spanlake_receiver_log_records_rejected_total", reason="invalid"),
        grpc_series("spanlake_receiver_log_records_rejected_total", reason="undecodable"),
        grpc_series("spanlake_receiver_spans_received_total"),
        grpc_series("spanlake_receiver_spans_rejected_total", reason="undecodable"),
    ]
    before = _metrics(shared_server)
    req = make_logs_request("log-counted", [make_log(str(i)) for i in range(6)] + [make_log("bad", span_id=b"\x01")])
    assert _grpc_export(shared_server, req).partial_success.rejected_log_records == 1
    with grpc.insecure_channel(shared_server.otlp_grpc) as channel:
        with pytest.raises(grpc.RpcError):
            channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")(b"\x0a\x05\x01", timeout=10)
    after = _metrics(shared_server)
    assert [after.get(k, 0) - before.get(k, 0) for k in watched] == [7, 6, 1, 1, 0, 0]


def test_oversized_requests_are_refused_and_acknowledged_logs_survive_kill_9(tmp_path) -> None:
    with SpanlakeServer(tmp_path / "d", "--max-message-size", "64KiB") as server:
        big = make_logs_request("log-big", [make_log("x" * 1000) for _ in range(200)])
        r = httpx.post(server.otlp_http + "/v1/logs", content=big.SerializeToString(), headers=PROTOBUF)
        assert r.status_code == 413
        r = httpx.post(server.otlp_http + "/v1/logs", content=gzip.compress(big.SerializeToString()),
                       headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert r.status_code == 413, "the limit applies after decompression too"
        with pytest.raises(grpc.RpcError) as err:
            _grpc_export(server, big)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        acked = []
        for i in range(10):
            tid = os.urandom(16)
            _grpc_export(server, make_logs_request("log-crash", [make_log(f"crash {i}", trace_id=tid)]))
            acked.append(tid)
        server.kill(signal.SIGKILL)
        store = open_reader(server.data_dir)
        try:
            missing = [t.hex() for t in acked if len(store.logs_for_trace(t)) != 1]
        finally:
            store.close()
        assert not missing, f"{len(missing)} acknowledged log exports lost"


# ---------------------------------------------------------------------------------------------
# Back-pressure (receivers in process, over a writer whose queue is full)
# ---------------------------------------------------------------------------------------------


class RefusingLogWriter:
    def __init__(self, error: type[Exception]) -> None:
        self.error = error
        self.calls = 0

    def write_logs(self, batch) -> Future:
        self.calls += 1
        raise self.error("full")


@pytest.mark.parametrize("error,status", [(WriteQueueFull, 429), (StoreClosed, 503)])
def test_http_asks_to_retry(error, status) -> None:
    writer = RefusingLogWriter(error)
    app = create_otlp_http_app([logs_signal(log_ingest(writer))], 1 << 20)

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post("/v1/logs", content=make_logs_request("s", [make_log()]).SerializeToString(),
                                     headers=PROTOBUF)

    r = asyncio.run(go())
    assert r.status_code == status and r.headers["Retry-After"] == "1"
    assert writer.calls == 1


def test_grpc_resource_exhausted_carries_retry_info() -> None:
    writer = RefusingLogWriter(WriteQueueFull)

    async def go():
        server, port = await start_grpc_receiver("127.0.0.1", 0, [logs_signal(log_ingest(writer))], 1 << 20)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await logs_service_pb2_grpc.LogsServiceStub(ch).Export(make_logs_request("s", [make_log()]))
                return err.value
        finally:
            await server.stop(None)

    err = asyncio.run(go())
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = status_pb2.Status.FromString(dict(err.trailing_metadata())["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and info.retry_delay.seconds == 1
