"""Jaeger UI JSON: the conformance golden files, then the mapping rules one by one."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path

import pytest

from spanlake.model import (
    Event,
    Link,
    Resource,
    Scope,
    Span,
    encode_bool,
    encode_bytes,
    encode_double,
    encode_int,
    encode_json_any_value,
    encode_string,
)
from spanlake.query.adjusters.standard import adjust_trace
from spanlake.query.assemble import assemble_trace
from spanlake.query.jaeger_json import (
    jaeger_envelope,
    jaeger_error,
    jaeger_span_id,
    jaeger_tag,
    jaeger_trace_id,
    trace_to_jaeger_ui,
)
from spanlake.query.otlp_json_in import OTLPJSONError, spans_from_otlp_json

# shared/ lies beside the repository (in development and in CI alike): look upwards for it.
GOLDEN = next(
    (p / "shared" / "conformance" / "jaeger-api" for p in Path(__file__).resolve().parents
     if (p / "shared" / "conformance" / "jaeger-api").is_dir()),
    Path("shared/conformance/jaeger-api"),
)


def load(name: str):
    path = GOLDEN / name
    if not path.exists():
        pytest.skip(f"conformance file {name} not available")
    return json.loads(path.read_text())


def same_document(got, expected) -> None:
    """Equal values *and* equal key order everywhere."""
    assert got == expected
    assert json.dumps(got, indent=1) == json.dumps(expected, indent=1)


# --- golden files ------------------------------------------------------------------------------


def test_transform_fixture_matches_jaeger_exactly():
    spans = spans_from_otlp_json(load("fixture_otlp2jaeger-in.json"))
    got = jaeger_envelope([trace_to_jaeger_ui(spans, sanitize=False)])
    same_document(got, load("fixture_otlp2jaeger-out.json"))


def test_transform_fixture_span_by_span():
    spans = spans_from_otlp_json(load("fixture_otlp2jaeger-in.json"))
    got = trace_to_jaeger_ui(spans, sanitize=False)
    expected = load("fixture_otlp2jaeger-out.json")["data"][0]
    for g, e in zip(got["spans"], expected["spans"], strict=True):
        for key in e:
            assert g[key] == e[key], key
        assert list(g) == list(e)


def ui01_spans() -> tuple[list[Span], dict[int, list[str]]]:
    """The spans of Jaeger's ``domain_01.json``, written as OTLP would carry them."""
    t = datetime.fromisoformat("2017-01-26T16:46:31.639875-05:00")
    start = int(t.timestamp()) * 10**9 + 639875139
    trace = (1).to_bytes(16, "big")
    x = Resource({"service.name": encode_string("service-x")})
    y = Resource({"service.name": encode_string("service-y")})
    scope = Scope()

    def span(n, name, res, dur=5000, parent=0, **kw):
        return Span(trace, n.to_bytes(8, "big"), parent.to_bytes(8, "big") if parent else b"", name, 0,
                    start, dur, resource=res, scope=scope, **kw)

    spans = [
        span(2, "test-general-conversion", x,
             events=[Event(start, "some-event"), Event(start, "", {"x": encode_string("y")})]),
        span(2, "some-operation", x, attributes={
            "peer.service": encode_string("service-y"),
            "peer.ipv4": encode_int(23456),
            "error": encode_bool(True),
            "temperature": encode_double(72.5),
            "javascript_limit": encode_int(9223372036854775222),
            "blob": encode_bytes(base64.b64decode("AAAwOQ==")),
        }),
        span(3, "some-operation", y, parent=2),
        span(4, "reference-test", y, links=[
            Link((0xFF).to_bytes(16, "big"), (0xFF).to_bytes(8, "big"),
                 attributes={"opentracing.ref_type": encode_string("child_of")}),
            Link(trace, (2).to_bytes(8, "big"), attributes={"opentracing.ref_type": encode_string("child_of")}),
            Link(trace, (2).to_bytes(8, "big")),
        ]),
        span(5, "preserveParentID-test", y, dur=4000, parent=4),
    ]
    return spans, {3: ["some span warning"], 4: ["some span warning"]}


def test_rich_ui_model_fixture():
    spans, warnings = ui01_spans()
    got = trace_to_jaeger_ui(spans, warnings, trace_warnings=["some trace warning"])
    same_document(got, load("uimodel_ui_01.json"))


# --- mapping rules -----------------------------------------------------------------------------


def test_ids():
    assert jaeger_trace_id((1).to_bytes(16, "big")) == "0000000000000001"
    assert jaeger_trace_id(bytes.fromhex("83a9efd15c1c98a977e0711cc93ee28b")) == "83a9efd15c1c98a977e0711cc93ee28b"
    assert jaeger_trace_id(b"") == "0000000000000000"
    assert jaeger_span_id(bytes.fromhex("00000000000000ff")) == "00000000000000ff"


def test_tag_values():
    assert jaeger_tag("k", encode_int(2**53 - 1))["value"] == 2**53 - 1
    assert jaeger_tag("k", encode_int(2**53))["value"] == str(2**53)
    assert jaeger_tag("k", encode_int(-(2**53)))["value"] == str(-(2**53))
    assert jaeger_tag("k", encode_double(1.5)) == {"key": "k", "type": "float64", "value": 1.5}
    assert jaeger_tag("k", encode_bytes(b"\x00\x01")) == {"key": "k", "type": "binary", "value": "AAE="}
    assert jaeger_tag("k", "n") == {"key": "k", "type": "string", "value": ""}
    kv = encode_json_any_value({"kvlistValue": {"values": [
        {"key": "z", "value": {"intValue": "1"}},
        {"key": "a", "value": {"arrayValue": {"values": [
            {"doubleValue": 2.0}, {"doubleValue": 1e-7}, {"boolValue": True},
            {"stringValue": "<a&b>"}, {"bytesValue": "AAE="}, {},
        ]}}},
    ]}})
    # Go's encoding/json: sorted keys, ES6 numbers, HTML-safe escapes, bytes as base64.
    assert jaeger_tag("m", kv) == {
        "key": "m", "type": "string",
        "value": '{"a":[2,1e-7,true,"\\u003ca\\u0026b\\u003e","AAE=",null],"z":1}',
    }
    arr = encode_json_any_value({"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": 3}]}})
    assert jaeger_tag("s", arr)["value"] == '["x",3]'


def test_span_tags_order_and_status(mk):
    s = mk(1, None, kind=3, status=2, attrs={"b": encode_string("1"), "a": encode_string("2")})
    s.scope = Scope("lib", "2.0")
    s.status_message = "boom"
    s.trace_state = "k=v"
    tags = trace_to_jaeger_ui([s])["spans"][0]["tags"]
    assert [(t["key"], t["value"]) for t in tags] == [
        ("otel.scope.name", "lib"),
        ("otel.scope.version", "2.0"),
        ("b", "1"),
        ("a", "2"),
        ("span.kind", "client"),
        ("otel.status_code", "ERROR"),
        ("error", True),
        ("otel.status_description", "boom"),
        ("w3c.tracestate", "k=v"),
    ]
    ok = mk(2, None, kind=0, status=1)
    ok.scope = Scope()
    assert trace_to_jaeger_ui([ok])["spans"][0]["tags"] == [{"key": "otel.status_code", "type": "string", "value": "OK"}]


def test_references_and_logs(mk):
    s = mk(5, 4, events=[Event(1_234_567, "ev", {"event": encode_string("custom"), "n": encode_int(1)})])
    other = (9).to_bytes(16, "big")
    s.links = [
        Link(s.trace_id, (4).to_bytes(8, "big"), attributes={"opentracing.ref_type": encode_string("follows_from")}),
        Link(other, (8).to_bytes(8, "big")),
    ]
    j = trace_to_jaeger_ui([s])["spans"][0]
    assert j["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": "0000000000000001", "spanID": "0000000000000004"},
        {"refType": "FOLLOWS_FROM", "traceID": "0000000000000009", "spanID": "0000000000000008"},
    ]
    # An explicit "event" attribute wins over the event name.
    assert j["logs"] == [{"timestamp": 1234, "fields": [
        {"key": "event", "type": "string", "value": "custom"},
        {"key": "n", "type": "int64", "value": 1},
    ]}]


def test_processes_dedup_and_go_key_order(mk):
    spans = [mk(i, None, service=f"svc{i}") for i in range(1, 12)] + [mk(20, None, service="svc1")]
    spans[0].resource = Resource({"service.name": encode_string("svc1")})  # equal content, other object
    doc = trace_to_jaeger_ui(spans)
    assert list(doc["processes"]) == ["p1", "p10", "p11", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"]
    assert doc["spans"][-1]["processID"] == "p1"
    assert doc["processes"]["p11"] == {"serviceName": "svc11", "tags": []}


def test_process_tags_and_service_name_rules():
    def proc(attrs, **kw):
        s = Span(b"\x01" * 16, b"\x02" * 8, b"", "", 0, 0, 1, resource=Resource(attrs))
        doc = trace_to_jaeger_ui([s], **kw)
        return doc["processes"]["p1"], doc["spans"][0]["operationName"]

    attrs = {"host.name": encode_string("h"), "service.name": encode_string("svc"), "pid": encode_int(7)}
    assert proc(attrs)[0] == {"serviceName": "svc", "tags": [
        {"key": "host.name", "type": "string", "value": "h"},
        {"key": "pid", "type": "int64", "value": 7},
    ]}
    assert proc({}, sanitize=False) == ({"serviceName": "OTLPResourceNoServiceName", "tags": []}, "")
    assert proc({"a": encode_string("b")}, sanitize=False)[0]["serviceName"] == ""
    assert proc({}) == ({"serviceName": "missing-service-name", "tags": []}, "empty-span-name")
    assert proc({"service.name": encode_string("")})[0]["serviceName"] == "empty-service-name"


def test_times_flags_and_warnings(mk):
    s = mk(1, None, start=1_999, dur=-5)
    s.flags = 0x101
    j = trace_to_jaeger_ui([s], [["w1", "w2"]])["spans"][0]
    assert list(j)[:3] == ["traceID", "spanID", "flags"] and j["flags"] == 1
    assert (j["startTime"], j["duration"], j["warnings"]) == (1, 0, ["w1", "w2"])
    assert trace_to_jaeger_ui([]) == {"traceID": "", "spans": [], "processes": {}, "warnings": None}


def test_envelope():
    assert jaeger_envelope(["a"], total=1) == {"data": ["a"], "total": 1, "limit": 0, "offset": 0, "errors": None}
    env = jaeger_envelope(None, errors=[jaeger_error("trace not found", trace_id="00ff"), {"code": 400, "msg": "bad"}])
    assert env["errors"] == [{"msg": "trace not found", "traceID": "00ff"}, {"code": 400, "msg": "bad"}]


# --- OTLP/JSON input ---------------------------------------------------------------------------


def test_otlp_json_variants():
    doc = {"resource_spans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "s"}}]},
        "scope_spans": [{"scope": {"name": "lib"}, "spans": [{
            "trace_id": "0102030405060708090a0b0c0d0e0f10", "span_id": "0102030405060708",
            "name": "op", "kind": "SPAN_KIND_CLIENT", "start_time_unix_nano": 10, "end_time_unix_nano": "25",
            "status": {"code": "STATUS_CODE_ERROR", "message": "m"},
            "attributes": [{"key": "n", "value": {"intValue": 5}}],
            "events": [{"timeUnixNano": "12", "name": "e"}],
            "links": [{"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0807060504030201"}],
        }]}]}]}
    (s,) = spans_from_otlp_json(json.dumps(doc))
    assert (s.kind, s.start_ns, s.duration_ns, s.status_code, s.status_message) == (3, 10, 15, 2, "m")
    assert s.attributes == {"n": "i5"} and s.parent_span_id == b""
    assert s.events[0].time_ns == 12 and s.links[0].span_id == bytes.fromhex("0807060504030201")
    assert s.service_name == "s" and s.scope.name == "lib"


@pytest.mark.parametrize("bad", [
    "not json",
    "[]",
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "0102030405060708"}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "01", "spanId": "0102030405060708"}]}]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "SPAN_KIND_NOPE"}]}]}]},
])
def test_otlp_json_errors(bad):
    with pytest.raises(OTLPJSONError):
        spans_from_otlp_json(bad if isinstance(bad, str) else json.dumps(bad))


def test_node_sdk_sample_end_to_end():
    path = GOLDEN.parent / "otlp" / "node-sdk" / "000-traces.json"
    if not path.exists():
        pytest.skip("OTLP samples not available")
    spans = spans_from_otlp_json(path.read_text())
    trace_id = spans[0].trace_id
    one = [s for s in spans if s.trace_id == trace_id]
    adjusted = adjust_trace(one)
    tree = assemble_trace(adjusted.spans, adjusted.span_warnings, adjusted.warnings)
    doc = trace_to_jaeger_ui(tree.spans, tree.span_warnings, trace_warnings=tree.warnings)
    assert doc["traceID"] == trace_id.hex()
    assert len(doc["spans"]) == len(one)
    assert all(s["flags"] == 1 for s in doc["spans"])  # the sample's flags are 0x101
    assert json.loads(json.dumps(doc)) == doc
