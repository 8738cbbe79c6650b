"""The log decoders: protobuf and OTLP/JSON give the same batch; bad records are rejected one by one."""

from __future__ import annotations

import json
import os
import time

import pytest
from google.protobuf import json_format

from spanlake.collector.decode_logs import DecodeError, decode_logs_json, decode_logs_protobuf
from spanlake.collector.decode_traces import decode_export_trace_request
from spanlake.log_model import logs_from_arrow, parse_severity, severity_name
from spanlake.model import decode_value
from tests.e2e.otlp_builders import kv, make_request, make_span
from tests.logs.otlp_logs import make_log, make_logs_request

T = 1_700_000_000_000_000_000


def _records(result):
    b = result.batch
    return logs_from_arrow(b.logs, b.resources, b.scopes)


def _hex_json(req) -> dict:
    """OTLP/JSON of a request as a client writes it: hex ids, camelCase, 64-bit ints as strings."""
    doc = json_format.MessageToDict(req)
    for rl in doc.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for rec in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in rec:
                        import base64

                        rec[key] = base64.b64decode(rec[key]).hex()
    return doc


def test_every_field_and_body_type_decodes_the_same_from_protobuf_and_json() -> None:
    tid, sid = os.urandom(16), os.urandom(8)
    bodies = ["text", 7, 2.5, True, b"\x00\x01", ["a", 1], {"k": {"n": [1, 2]}}, None]
    records = [
        make_log(body, time_ns=T + i, observed_ns=T + 100 + i, severity=i + 9, severity_text=f"S{i}", trace_id=tid,
                 span_id=sid, flags=1, event_name=f"ev{i}",
                 attrs={"s": "x", "i": -1, "d": 0.5, "b": False, "y": b"\xff", "arr": [1, "two"], "m": {"a": 1},
                        "e": None})
        for i, body in enumerate(bodies)
    ]
    req = make_logs_request("decode-svc", records, {"host.name": "h"})
    req.resource_logs[0].schema_url = "https://opentelemetry.io/schemas/1.26.0"
    req.resource_logs[0].scope_logs[0].scope.version = "3"
    req.resource_logs[0].scope_logs[0].scope.attributes.extend([kv("scope.k", 1)])
    from_proto = decode_logs_protobuf(req.SerializeToString())
    from_json = decode_logs_json(json.dumps(_hex_json(req)))
    assert from_proto.rejected == from_json.rejected == 0
    a, b = _records(from_proto), _records(from_json)
    for x, y in zip(a, b):
        x.log_id = y.log_id = 0  # random per receipt
    assert a == b
    assert [decode_value(r.body) for r in a] == bodies
    r = a[0]
    assert (r.time_ns, r.observed_time_ns, r.severity_number, r.severity_text) == (T, T + 100, 9, "S0")
    assert (r.trace_id, r.span_id, r.flags, r.event_name) == (tid, sid, 1, "ev0")
    assert {k: decode_value(v) for k, v in r.attributes.items()} == {
        "s": "x", "i": -1, "d": 0.5, "b": False, "y": b"\xff", "arr": [1, "two"], "m": {"a": 1}, "e": None}
    assert r.service_name == "decode-svc" and r.resource.schema_url.endswith("1.26.0")
    assert (r.scope.name, r.scope.version, r.scope.attributes) == ("log-builder", "3", {"scope.k": "i1"})
    assert from_proto.batch.logs.column("body").to_pylist()[:3] == ["text", "7", "2.5"]
    assert from_proto.batch.logs.column("body_value").to_pylist()[:2] == [None, "i7"]


def test_many_attributes_take_the_vectorized_path_and_agree() -> None:
    records = [make_log(f"m{i}", attrs={f"k{j}": j for j in range(5)} | {"s": "v" * i}) for i in range(200)]
    result = decode_logs_protobuf(make_logs_request("many", records).SerializeToString())
    got = _records(result)
    assert len(got) == 200
    assert got[199].attributes == {**{f"k{j}": f"i{j}" for j in range(5)}, "s": "s" + "v" * 199}


def test_logs_and_spans_share_resource_and_scope_ids() -> None:
    span_batch = decode_export_trace_request(make_request("shared", [make_span()], {"host.name": "h"}).SerializeToString()).batch
    log_req = make_logs_request("shared", [make_log()], {"host.name": "h"}, scope="builder")
    log_batch = decode_logs_protobuf(log_req.SerializeToString()).batch
    assert span_batch.resources.to_pylist() == log_batch.resources.to_pylist()
    assert span_batch.scopes.to_pylist() == log_batch.scopes.to_pylist()


def test_time_falls_back_to_observed_then_to_receipt() -> None:
    before = time.time_ns()
    records = [make_log("a", time_ns=0, observed_ns=T), make_log("b", time_ns=0, observed_ns=0)]
    got = _records(decode_logs_protobuf(make_logs_request("t", records).SerializeToString()))
    assert (got[0].time_ns, got[0].observed_time_ns) == (T, T)
    assert got[1].time_ns == got[1].observed_time_ns and before <= got[1].time_ns <= time.time_ns()


def test_bad_ids_reject_their_record_only_and_zero_ids_mean_uncorrelated() -> None:
    good = make_log("good", trace_id=os.urandom(16), span_id=os.urandom(8))
    records = [
        good,
        make_log("short trace", trace_id=b"\x01" * 5),
        make_log("long span", span_id=b"\x01" * 9),
        make_log("zeros", trace_id=bytes(16), span_id=bytes(8)),
        make_log("no ids"),
        make_log("bad severity", severity=300),
    ]
    result = decode_logs_protobuf(make_logs_request("ids", records).SerializeToString())
    assert result.rejected == 3
    assert result.error_message == (
        "3 log records rejected: resourceLogs[0].scopeLogs[0].logRecords[1].traceId is 5 bytes, expected 16 or "
        "empty; resourceLogs[0].scopeLogs[0].logRecords[2].spanId is 9 bytes, expected 8 or empty; "
        "resourceLogs[0].scopeLogs[0].logRecords[5].severityNumber is 300, expected 0..255"
    )
    got = _records(result)
    assert [decode_value(r.body) for r in got] == ["good", "zeros", "no ids"]
    assert (got[1].trace_id, got[1].span_id, got[2].trace_id) == (b"", b"", b"")
    assert result.batch.logs.column("trace_id").to_pylist()[1:] == [None, None]


def test_json_ids_that_are_not_hex_reject_their_record() -> None:
    doc = {"resource_logs": [{"scope_logs": [{"log_records": [
        {"body": {"stringValue": "ok"}, "traceId": "AB" * 16, "spanId": "cd" * 8, "severityNumber": "SEVERITY_NUMBER_WARN"},
        {"body": {"stringValue": "bad"}, "traceId": "xyz"},
        {"body": {"stringValue": "short"}, "span_id": "abcd", "unknownField": [1]},
    ]}]}]}
    result = decode_logs_json(json.dumps(doc))
    assert result.rejected == 2
    assert "logRecords[1].traceId: 'xyz' is not a hex string" in result.error_message
    assert "logRecords[2].spanId is 2 bytes, expected 8 or empty" in result.error_message
    (r,) = _records(result)
    assert (r.trace_id, r.span_id, r.severity_number, r.service_name) == (
        bytes.fromhex("ab" * 16), bytes.fromhex("cd" * 8), 13, "missing-service-name")


@pytest.mark.parametrize(
    "body,needle",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}', "timeUnixNano"),
        (b'{"resourceLogs": {"oops": 1}}', "resourceLogs"),
    ],
)
def test_malformed_json_requests_fail_naming_the_problem(body: bytes, needle: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_logs_json(body)
    assert needle in str(err.value)


@pytest.mark.parametrize("data", [os.urandom(64), b"\x0a\xff\xff\xff\x0f\x01"])
def test_malformed_protobuf_fails(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_logs_protobuf(data)


def test_empty_request_is_an_empty_batch() -> None:
    assert decode_logs_protobuf(b"").batch.num_logs == 0
    assert decode_logs_json(b"{}").batch.num_logs == 0


@pytest.mark.parametrize(
    "text,number",
    [("0", 0), ("17", 17), ("trace", 1), ("DEBUG", 5), ("info", 9), ("INFO3", 11), ("warn", 13), ("Warning", 13),
     ("WARN2", 14), ("error", 17), ("FATAL4", 24)],
)
def test_severity_names(text: str, number: int) -> None:
    assert parse_severity(text) == number


@pytest.mark.parametrize("text", ["LOUD", "INFO5", "-1", "300", ""])
def test_bad_severity_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_severity(text)


def test_severity_short_names() -> None:
    assert [severity_name(n) for n in (0, 1, 4, 9, 12, 13, 17, 21, 24, 30)] == [
        "UNSPECIFIED", "TRACE", "TRACE4", "INFO", "INFO4", "WARN", "ERROR", "FATAL", "FATAL4", "30"]


@pytest.mark.parametrize("length", [0, 1, 127, 128, 16_383, 16_384, 70_000])
def test_string_bodies_of_every_length_are_cut_out_exactly(length: int) -> None:
    text = ("é" + "x" * length)[:length] if length else ""
    other = {"k": [1, "a"]}  # one structured body among them: the one-by-one path
    records = [make_log(text)] * 3 + [make_log(other), make_log(None), make_log(7), make_log(b"\x00\x01")]
    batch = decode_logs_protobuf(make_logs_request("bodies", records).SerializeToString()).batch
    assert batch.logs.column("body").to_pylist()[:3] == [text] * 3
    assert batch.logs.column("body_value").to_pylist()[:3] == [None] * 3
    got = [decode_value(r.body) for r in logs_from_arrow(batch.logs, batch.resources, batch.scopes)]
    assert got == [text] * 3 + [other, None, 7, b"\x00\x01"]


def test_a_string_body_that_is_not_utf8_fails_the_request() -> None:
    req = make_logs_request("bad-utf8", [make_log("ok")])
    raw = bytearray(req.SerializeToString())
    at = raw.index(b"ok")
    raw[at : at + 2] = b"\xff\xfe"
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_logs_protobuf(bytes(raw))
