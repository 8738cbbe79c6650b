"""OTLP/JSON trace requests: the conformance bodies of real SDKs, the JSON dialects, errors."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanlake.collector.decode_traces import DecodeError, decode_export_trace_request
from spanlake.collector.otlp_json import (
    INVALID_ID,
    decode_traces_json,
    hex_ids_to_proto_json,
    parse_traces_json,
)

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "otlp"
TRACE_FILES = sorted(CONFORMANCE.glob("*/*trace*.json"))


def load(name: str) -> dict:
    return json.loads((CONFORMANCE / name).read_text())


def decode_doc(doc: dict):
    result = decode_traces_json(json.dumps(doc).encode())
    return result


def spans_by_id(result) -> dict[str, dict]:
    assert result.rejected_spans == 0, result.error_message
    return {r["span_id"].hex(): r for r in result.batch.spans.to_pylist()}


def first_spans(doc: dict) -> list[dict]:
    return doc["resourceSpans"][0]["scopeSpans"][0]["spans"]


# ---------------------------------------------------------------------------------------------
# Conformance bodies
# ---------------------------------------------------------------------------------------------


def test_conformance_files_are_present():
    names = {f"{p.parent.name}/{p.name}" for p in TRACE_FILES}
    assert {"proto-examples/trace.json", "python-sdk/000-traces.json", "node-sdk/000-traces.json"} <= names


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_conformance_body_decodes_completely(path):
    doc = json.loads(path.read_text())
    expected = sum(len(ss.get("spans", [])) for rs in doc["resourceSpans"] for ss in rs.get("scopeSpans", []))
    result = decode_traces_json(path.read_bytes())
    assert result.rejected_spans == 0, result.error_message
    assert result.batch.num_spans == expected > 0
    # The JSON and the protobuf path give the same batch.
    proto = decode_export_trace_request(parse_traces_json(path.read_bytes()).SerializeToString())
    assert proto.batch.spans.equals(result.batch.spans)


def test_proto_example_trace():
    result = decode_traces_json((CONFORMANCE / "proto-examples/trace.json").read_bytes())
    (row,) = result.batch.spans.to_pylist()
    assert row["trace_id"] == bytes.fromhex("5b8efff798038103d269b633813fc60c")  # sent in upper case
    assert row["span_id"] == bytes.fromhex("eee19b7ec3c1b174")
    assert row["parent_span_id"] == bytes.fromhex("eee19b7ec3c1b173")
    assert row["name"] == "I'm a server span" and row["kind"] == 2
    assert row["start_ns"] == 1544712660000000000 and row["duration_ns"] == 1_000_000_000
    assert row["attributes"] == [("my.span.attr", "ssome value")]
    assert row["service_name"] == "my.service"
    assert (row["scope_name"], row["scope_version"]) == ("my.library", "1.0.0")
    (scope,) = result.batch.scopes.to_pylist()
    assert scope["attributes"] == [("my.scope.attribute", "ssome scope attribute")]


def test_python_sdk_body_int64_as_strings():
    result = decode_traces_json((CONFORMANCE / "python-sdk/000-traces.json").read_bytes())
    spans = spans_by_id(result)
    server = spans["2f2bb69d7c7864ca"]
    assert server["trace_id"].hex() == "5ddc95fa851ad7443f44385e7a667d93"
    assert server["parent_span_id"] is None
    assert server["name"] == "HTTP GET /checkout" and server["kind"] == 2 and server["flags"] == 256
    assert server["start_ns"] == 1795877429328321009
    assert server["duration_ns"] == 1795877429335142910 - 1795877429328321009
    assert server["attr_http_request_method"] == "sGET"
    assert dict(server["attributes"]) == {"url.path": "s/checkout", "user.id": "su0", "request.num": "i0"}
    assert server["events"] == [
        {
            "time_ns": 1795877429328361287,
            "name": "cart.loaded",
            "attributes": [("items", "i3"), ("currency", "sEUR")],
            "dropped_attributes_count": 0,
        }
    ]
    assert server["status_code"] == 0 and server["service_name"] == "frontend"
    client = spans["661d5d855b912f15"]
    assert client["parent_span_id"].hex() == "2f2bb69d7c7864ca" and client["kind"] == 3
    linked = spans["f28c8f13cc581b6e"]
    assert linked["links"] == [
        {
            "trace_id": bytes.fromhex("5ddc95fa851ad7443f44385e7a667d93"),
            "span_id": bytes.fromhex("2f2bb69d7c7864ca"),
            "trace_state": "",
            "flags": 256,
            "attributes": [("link.reason", "sretry-of")],
            "dropped_attributes_count": 0,
        }
    ]
    (resource,) = result.batch.resources.to_pylist()
    assert dict(resource["attributes"])["service.instance.id"] == "sdd9f7f47-4833-4396-b5bd-eb82aea46d60"
    assert len(resource["attributes"]) == 8


def test_python_sdk_error_span_and_typed_attributes():
    spans = spans_by_id(decode_traces_json((CONFORMANCE / "python-sdk/002-traces.json").read_bytes()))
    failed = spans["f2dd64583c2f2123"]
    assert (failed["status_code"], failed["status_message"]) == (2, "order 42 is corrupt")
    assert failed["attr_http_route"] == "s/orders/{id}" and failed["attr_http_response_status_code"] == "i500"
    (event,) = failed["events"]
    assert event["name"] == "exception" and event["time_ns"] == 1795877429341900290
    assert dict(event["attributes"])["exception.type"] == "sValueError"
    assert dict(event["attributes"])["order.id"] == "i42"
    load_order = spans["47fc2b2f8522d07c"]
    assert dict(load_order["attributes"]) == {
        "order.id": "i42",
        "order.tags": 'a{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}',
        "order.priority": "d1.5",
        "order.paid": "btrue",
    }
    assert load_order["kind"] == 1 and load_order["flags"] == 256


def test_python_sdk_consumer_with_cross_trace_link():
    spans = spans_by_id(decode_traces_json((CONFORMANCE / "python-sdk/004-traces.json").read_bytes()))
    consumer = spans["bad2560715cf7048"]
    assert consumer["kind"] == 5 and consumer["name"] == "consume order.created"
    assert consumer["service_name"] == "postgres-db" and consumer["parent_span_id"] is None
    (link,) = consumer["links"]
    assert link["trace_id"].hex() == "b917a33e2e4750bd82cb7e1f05f82dc2" and link["span_id"].hex() == "fa0c753da255053f"
    assert link["attributes"] == [] and link["flags"] == 256


def test_node_sdk_body_int64_as_numbers():
    spans = spans_by_id(decode_traces_json((CONFORMANCE / "node-sdk/000-traces.json").read_bytes()))
    server = spans["4d78b74100ad8bb6"]
    assert server["trace_id"].hex() == "eb04b94d377469b9ea020e6c0a5703ae"
    assert server["name"] == "POST /cart/add" and server["kind"] == 2 and server["flags"] == 257
    assert server["start_ns"] == 1795877429652000000 and server["duration_ns"] == 8643400
    assert server["attr_http_request_method"] == "sPOST"
    assert dict(server["attributes"]) == {"url.path": "s/cart/add", "request.num": "i0", "flag": "btrue"}
    (event,) = server["events"]
    assert event == {
        "time_ns": 1795877429653341569,
        "name": "auth.checked",
        "attributes": [("user.id", "su0")],
        "dropped_attributes_count": 0,
    }
    assert server["service_name"] == "web-gateway"


def test_node_sdk_error_and_int_array():
    spans = spans_by_id(decode_traces_json((CONFORMANCE / "node-sdk/002-traces.json").read_bytes()))
    failed = spans["7060f6fa311bb69a"]
    assert (failed["status_code"], failed["status_message"]) == (2, "cart is locked")
    # Node sends ints as JSON numbers, Python as strings: both encode the same.
    assert dict(failed["attributes"])["cart.items"] == (
        'a{"arrayValue":{"values":[{"intValue":"1"},{"intValue":"2"},{"intValue":"3"}]}}'
    )
    assert failed["events"][0]["attributes"][1] == ("exception.message", "scart is locked")


def test_python_and_node_dialects_decode_alike():
    doc = load("python-sdk/000-traces.json")
    numbers = copy.deepcopy(doc)
    for span in first_spans(numbers):  # as the Node SDK sends them
        for key in ("startTimeUnixNano", "endTimeUnixNano"):
            span[key] = int(span[key])
        for attr in span.get("attributes", []):
            if "intValue" in attr["value"]:
                attr["value"]["intValue"] = int(attr["value"]["intValue"])
    assert decode_doc(numbers).batch.spans.equals(decode_doc(doc).batch.spans)


# ---------------------------------------------------------------------------------------------
# Dialects the spec allows
# ---------------------------------------------------------------------------------------------


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _snake_keys(node):
    if isinstance(node, dict):
        return {_snake(k): _snake_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_snake_keys(v) for v in node]
    return node


def test_snake_case_field_names():
    doc = load("python-sdk/002-traces.json")
    assert decode_doc(_snake_keys(doc)).batch.spans.equals(decode_doc(doc).batch.spans)


def test_enum_names_and_unknown_fields_and_nulls():
    doc = load("python-sdk/002-traces.json")
    named = copy.deepcopy(doc)
    for span in first_spans(named):
        span["kind"] = Span.SpanKind.Name(span["kind"])
        if span["status"].get("code") == 2:
            span["status"]["code"] = "STATUS_CODE_ERROR"
        span["someFutureField"] = {"x": [1, 2]}
        span["traceState"] = None
    named["resourceSpans"][0]["entityRefs"] = [{"type": "service"}]
    assert decode_doc(named).batch.spans.equals(decode_doc(doc).batch.spans)


def test_all_value_types_and_numbers():
    doc = load("proto-examples/trace.json")
    span = first_spans(doc)[0]
    span["attributes"] = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "-9223372036854775808"}},
        {"key": "i2", "value": {"intValue": 9007199254740993}},
        {"key": "d", "value": {"doubleValue": 2}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "inf", "value": {"doubleValue": "-Infinity"}},
        {"key": "b", "value": {"boolValue": False}},
        {"key": "y", "value": {"bytesValue": base64.b64encode(b"\x00\xfa").decode()}},
        {"key": "empty", "value": {}},
        {"key": "novalue"},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": 1}}]}}},
    ]
    span["droppedAttributesCount"] = "3"
    span["flags"] = 1
    (row,) = decode_doc(doc).batch.spans.to_pylist()
    assert dict(row["attributes"]) == {
        "s": "sx",
        "i": "i-9223372036854775808",
        "i2": "i9007199254740993",
        "d": "d2.0",
        "nan": "dnan",
        "inf": "d-inf",
        "b": "bfalse",
        "y": "yAPo=",
        "empty": "n",
        "novalue": "n",
        "kv": 'k{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}}',
    }
    assert row["dropped_attributes_count"] == 3 and row["flags"] == 1


# ---------------------------------------------------------------------------------------------
# Bad ids reject their span; anything else malformed rejects the request
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("traceId", "zz" * 16, "traceId: 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz' is not a hex string"),
        ("spanId", "12345", "spanId: '12345' is not a hex string"),
        ("parentSpanId", "00 11 22 33 44 55 66 77", "parentSpanId: '00 11 22 33 44 55 66 77' is not a hex string"),
        ("traceId", "abcdef0123", "traceId is 5 bytes, expected 16"),
        ("spanId", "00" * 8, "spanId is all zeros"),
    ],
)
def test_a_bad_hex_id_rejects_only_its_span(field, value, problem):
    doc = load("python-sdk/000-traces.json")
    first_spans(doc)[2][field] = value
    result = decode_doc(doc)
    assert result.rejected_spans == 1
    assert result.error_message == f"1 span rejected: resourceSpans[0].scopeSpans[0].spans[2].{problem}"
    assert result.batch.num_spans == 5
    # The message alone (as a receiver that re-encodes it sees it) still rejects the span.
    request = parse_traces_json(json.dumps(doc).encode())
    plain = decode_export_trace_request(request.SerializeToString())
    assert plain.rejected_spans == 1 and plain.batch.num_spans == 5


def test_a_bad_hex_link_id_rejects_its_span():
    doc = load("python-sdk/000-traces.json")
    first_spans(doc)[5]["links"][0]["traceId"] = "not-hex"
    result = decode_doc(doc)
    assert result.error_message == (
        "1 span rejected: resourceSpans[0].scopeSpans[0].spans[5].links[0].traceId: 'not-hex' is not a hex string"
    )
    assert result.batch.num_spans == 5


def _mutated(mutate) -> bytes:
    doc = load("python-sdk/000-traces.json")
    mutate(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: first_spans(d)[2].update(startTimeUnixNano="soon"),
            "resourceSpans[0].scopeSpans[0].spans[2].startTimeUnixNano: not an integer",
        ),
        (
            lambda d: first_spans(d)[2].update(endTimeUnixNano=-1),
            "resourceSpans[0].scopeSpans[0].spans[2].endTimeUnixNano: -1 is out of range",
        ),
        (
            lambda d: first_spans(d)[1]["events"][0]["attributes"][0]["value"].update(intValue=1.5),
            "resourceSpans[0].scopeSpans[0].spans[1].events[0].attributes[0].value.intValue: not an integer",
        ),
        (
            lambda d: first_spans(d)[1].update(kind="SPAN_KIND_SOMETHING"),
            "resourceSpans[0].scopeSpans[0].spans[1].kind: unknown enum value 'SPAN_KIND_SOMETHING'",
        ),
        (
            lambda d: first_spans(d)[1].update(traceId=7),
            "resourceSpans[0].scopeSpans[0].spans[1].traceId: not a string",
        ),
        (
            lambda d: first_spans(d)[1].update(name=["x"]),
            "resourceSpans[0].scopeSpans[0].spans[1].name: not a string",
        ),
        (
            lambda d: first_spans(d)[1].update(attributes={"k": "v"}),
            "resourceSpans[0].scopeSpans[0].spans[1].attributes: not an array",
        ),
        (
            lambda d: first_spans(d)[1]["status"].update(code=True),
            "resourceSpans[0].scopeSpans[0].spans[1].status.code: not an integer",
        ),
        (
            lambda d: first_spans(d)[5]["links"][0].update(flags="x"),
            "resourceSpans[0].scopeSpans[0].spans[5].links[0].flags: not an integer",
        ),
        (
            lambda d: d["resourceSpans"][0]["resource"]["attributes"][0].update(value={"doubleValue": "fast"}),
            "resourceSpans[0].resource.attributes[0].value.doubleValue: not a number",
        ),
        (
            lambda d: d["resourceSpans"][0]["scopeSpans"][0].update(scope=[]),
            "resourceSpans[0].scopeSpans[0].scope: not an object",
        ),
        (lambda d: d["resourceSpans"][0].update(scopeSpans={}), "resourceSpans[0].scopeSpans: not an array"),
        (lambda d: d.update(resourceSpans=[1]), "resourceSpans[0]: not an object"),
    ],
)
def test_malformed_fields_name_their_path(mutate, message):
    with pytest.raises(DecodeError) as err:
        decode_traces_json(_mutated(mutate))
    assert str(err.value) == message


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b"[]", b'"x"', b"null"])
def test_malformed_json_raises_decode_error(body):
    with pytest.raises(DecodeError):
        decode_traces_json(body)


def test_empty_request():
    assert decode_traces_json(b"{}").batch.num_spans == 0
    assert decode_traces_json(b'{"resourceSpans": []}').batch.num_spans == 0


# ---------------------------------------------------------------------------------------------
# The id conversion alone, for signals parsed with json_format (logs)
# ---------------------------------------------------------------------------------------------


LOG_FILES = sorted(CONFORMANCE.glob("*/*logs*.json")) + sorted(CONFORMANCE.glob("*/events.json"))


@pytest.mark.parametrize("path", LOG_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_conformance_log_body_parses_after_id_conversion(path):
    doc = json.loads(path.read_text())
    hex_records = [
        (r.get("traceId", ""), r.get("spanId", ""))
        for rl in doc["resourceLogs"]
        for sl in rl.get("scopeLogs", [])
        for r in sl.get("logRecords", [])
    ]
    assert hex_ids_to_proto_json(doc) == []
    logs = json_format.ParseDict(doc, LogsData(), ignore_unknown_fields=True)
    records = [r for rl in logs.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert [(r.trace_id.hex(), r.span_id.hex()) for r in records] == [(t.lower(), s.lower()) for t, s in hex_records]


def test_hex_ids_to_proto_json_for_logs():
    doc = load("python-sdk/001-logs.json")
    records = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    trace_hex, span_hex = records[0]["traceId"], records[0]["spanId"]
    assert hex_ids_to_proto_json(doc) == []
    logs = json_format.ParseDict(doc, LogsData(), ignore_unknown_fields=True)
    record = logs.resource_logs[0].scope_logs[0].log_records[0]
    assert record.trace_id.hex() == trace_hex and record.span_id.hex() == span_hex


def test_hex_ids_to_proto_json_reports_bad_ids_with_their_path():
    doc = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "traceId", "value": {"stringValue": "not an id"}}]},
                "scopeLogs": [{"logRecords": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "xyz"}]}],
            }
        ]
    }
    problems = hex_ids_to_proto_json(doc)
    assert problems == [("resourceLogs[0].scopeLogs[0].logRecords[0].spanId", "'xyz' is not a hex string")]
    record = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert base64.b64decode(record["traceId"]).hex() == "5b8efff798038103d269b633813fc60c"
    assert base64.b64decode(record["spanId"]) == INVALID_ID
    # attribute values are user data, never rewritten
    assert doc["resourceLogs"][0]["resource"]["attributes"][0]["value"]["stringValue"] == "not an id"


def test_hex_ids_to_proto_json_for_traces_matches_the_trace_parser():
    doc = load("python-sdk/000-traces.json")
    expected = parse_traces_json(json.dumps(doc).encode())
    hex_ids_to_proto_json(doc)
    via_json_format = json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    assert via_json_format == expected
