"""Encoding read-model spans back to OTLP: round trips through the decoder, Jaeger's JSON shape."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status, TracesData

from spanlake.collector.decode_traces import decode_export_trace_request
from spanlake.collector.otlp_json import decode_traces_json, parse_traces_json
from spanlake.model import Resource, Scope, Span, spans_from_arrow
from spanlake.otlp_encode import spans_to_otlp_json, spans_to_traces_data

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"


# ---------------------------------------------------------------------------------------------
# Requests with every field, and a semantic comparison
# ---------------------------------------------------------------------------------------------


def _any_value(rng: random.Random, depth: int = 0) -> AnyValue:
    kind = rng.randrange(8 if depth < 2 else 6)
    av = AnyValue()
    if kind == 0:
        av.string_value = rng.choice(["", "x", "ünï", "y" * 200])
    elif kind == 1:
        av.bool_value = rng.random() < 0.5
    elif kind == 2:
        av.int_value = rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randrange(10**9)])
    elif kind == 3:
        av.double_value = rng.choice([0.0, -2.5, 1e300, math.inf, rng.random()])
    elif kind == 4:
        av.bytes_value = rng.randbytes(rng.randrange(4))
    elif kind == 6:
        av.array_value.values.extend(_any_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    elif kind == 7:
        av.kvlist_value.values.extend(
            KeyValue(key=f"k{i}", value=_any_value(rng, depth + 1)) for i in range(rng.randrange(3))
        )
    return av  # kind 5: empty


def _attributes(rng: random.Random, n: int, prefix: str = "a") -> list[KeyValue]:
    keys = [f"{prefix}{i}" for i in range(n)]
    if keys and prefix == "a" and rng.random() < 0.5:
        keys[0] = rng.choice(["http.request.method", "db.system", "error.type"])
    return [KeyValue(key=k, value=_any_value(rng)) for k in keys]


def random_request(seed: int) -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    for r in range(rng.randrange(1, 3)):
        rs = req.resource_spans.add(schema_url=rng.choice(["", "https://opentelemetry.io/schemas/1.26.0"]))
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=f"svc-{seed}-{r}")))
        rs.resource.attributes.extend(_attributes(rng, rng.randrange(3), "res"))
        rs.resource.dropped_attributes_count = rng.choice([0, 2])
        for s in range(rng.randrange(1, 3)):
            ss = rs.scope_spans.add(schema_url=rng.choice(["", "https://scope"]))
            ss.scope.name = rng.choice(["", f"lib{s}"])
            ss.scope.version = rng.choice(["", "1.0"])
            ss.scope.attributes.extend(_attributes(rng, rng.randrange(2), "sc"))
            ss.scope.dropped_attributes_count = rng.choice([0, 1])
            for _ in range(rng.randrange(1, 6)):
                start = rng.randrange(2**62)
                span = ss.spans.add(
                    trace_id=rng.randbytes(16),
                    span_id=rng.randbytes(8),
                    parent_span_id=rng.choice([b"", rng.randbytes(8)]),
                    trace_state=rng.choice(["", "a=1,b=2"]),
                    flags=rng.choice([0, 1, 0x301]),
                    name=rng.choice(["", "GET /", "op"]),
                    kind=rng.randrange(6),
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rng.randrange(-100, 10**9),
                    attributes=_attributes(rng, rng.randrange(5)),
                    dropped_attributes_count=rng.choice([0, 3]),
                    dropped_events_count=rng.choice([0, 4]),
                    dropped_links_count=rng.choice([0, 5]),
                    status=Status(code=rng.randrange(3), message=rng.choice(["", "failed"])),
                )
                for _ in range(rng.randrange(3)):
                    span.events.add(
                        time_unix_nano=start + rng.randrange(1000),
                        name=rng.choice(["", "exception"]),
                        attributes=_attributes(rng, rng.randrange(3), "e"),
                        dropped_attributes_count=rng.choice([0, 1]),
                    )
                for _ in range(rng.randrange(3)):
                    span.links.add(
                        trace_id=rng.randbytes(16),
                        span_id=rng.randbytes(8),
                        trace_state=rng.choice(["", "x=y"]),
                        flags=rng.choice([0, 0x101]),
                        attributes=_attributes(rng, rng.randrange(2), "l"),
                        dropped_attributes_count=rng.choice([0, 6]),
                    )
    return req


def _value(av: AnyValue) -> bytes:
    return av.SerializeToString(deterministic=True)  # NaN-safe and presence-insensitive


def _attrs(kvs) -> tuple:
    return tuple(sorted((kv.key, _value(kv.value)) for kv in kvs))


def canonical(data: ExportTraceServiceRequest | TracesData) -> list[tuple]:
    """Every span with its resource and scope, attributes as sets; spans in no particular order.

    Events and links keep their order (OTLP keeps it; attributes and spans it does not).
    """
    out = []
    for rs in data.resource_spans:
        resource = (_attrs(rs.resource.attributes), rs.resource.dropped_attributes_count, rs.schema_url)
        for ss in rs.scope_spans:
            sc = ss.scope
            scope = (sc.name, sc.version, _attrs(sc.attributes), sc.dropped_attributes_count, ss.schema_url)
            for s in ss.spans:
                span = (
                    s.trace_id,
                    s.span_id,
                    s.parent_span_id,
                    s.trace_state,
                    s.flags,
                    s.name,
                    s.kind,
                    s.start_time_unix_nano,
                    s.end_time_unix_nano,
                    _attrs(s.attributes),
                    s.dropped_attributes_count,
                    tuple(
                        (e.time_unix_nano, e.name, _attrs(e.attributes), e.dropped_attributes_count) for e in s.events
                    ),
                    s.dropped_events_count,
                    tuple(
                        (k.trace_id, k.span_id, k.trace_state, k.flags, _attrs(k.attributes))
                        + (k.dropped_attributes_count,)
                        for k in s.links
                    ),
                    s.dropped_links_count,
                    (s.status.code, s.status.message),
                )
                out.append((resource, scope, span))
    return sorted(out)


def decoded_spans(data: bytes) -> list[Span]:
    result = decode_export_trace_request(data)
    assert result.rejected_spans == 0, result.error_message
    b = result.batch
    return spans_from_arrow(b.spans, b.resources, b.scopes)


# ---------------------------------------------------------------------------------------------
# Protobuf round trip
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_protobuf_round_trip(seed):
    request = random_request(seed)
    encoded = spans_to_traces_data(decoded_spans(request.SerializeToString()))
    assert isinstance(encoded, TracesData)
    assert canonical(encoded) == canonical(request)


SDK_BODIES = ["proto-examples/trace.json", "python-sdk/000-traces.json", "python-sdk/002-traces.json"]


@pytest.mark.parametrize("name", SDK_BODIES + ["node-sdk/000-traces.json", "node-sdk/002-traces.json"])
def test_sdk_bodies_round_trip(name):
    request = parse_traces_json((CONFORMANCE / "otlp" / name).read_bytes())
    encoded = spans_to_traces_data(decoded_spans(request.SerializeToString()))
    assert canonical(encoded) == canonical(request)


def test_grouping_by_resource_then_scope_in_order_of_appearance():
    res_a, res_b = Resource({"service.name": "sa"}), Resource({"service.name": "sb"})
    scope_1, scope_2 = Scope("one"), Scope("two", "2.0")

    def span(i: int, resource: Resource, scope: Scope) -> Span:
        trace_id = bytes(15) + bytes([1])
        return Span(trace_id, i.to_bytes(8, "big"), b"", f"s{i}", 1, 10, 5, resource=resource, scope=scope)

    spans = [span(1, res_a, scope_1), span(2, res_b, scope_1), span(3, Resource({"service.name": "sa"}), scope_2)]
    spans.append(span(4, res_a, Scope("one")))
    data = spans_to_traces_data(spans)
    layout = [
        (
            rs.resource.attributes[0].value.string_value,
            [(ss.scope.name, [s.name for s in ss.spans]) for ss in rs.scope_spans],
        )
        for rs in data.resource_spans
    ]
    assert layout == [("a", [("one", ["s1", "s4"]), ("two", ["s3"])]), ("b", [("one", ["s2"])])]
    assert data.resource_spans[0].scope_spans[1].scope.version == "2.0"


def test_traces_data_is_a_valid_export_request():
    request = random_request(3)
    data = spans_to_traces_data(decoded_spans(request.SerializeToString())).SerializeToString()
    assert canonical(ExportTraceServiceRequest.FromString(data)) == canonical(request)


def test_empty():
    assert spans_to_traces_data([]) == TracesData()
    assert spans_to_otlp_json([]) == {"resourceSpans": []}


# ---------------------------------------------------------------------------------------------
# OTLP/JSON
# ---------------------------------------------------------------------------------------------


def test_json_matches_jaeger_api_v3_snapshot():
    snapshot = json.loads((CONFORMANCE / "jaeger-api" / "apiv3_snapshots_GetTrace.json").read_text())
    span = Span(
        trace_id=(1).to_bytes(16, "big"),
        span_id=(2).to_bytes(8, "big"),
        parent_span_id=b"",
        name="foobar",
        kind=2,
        start_ns=0,
        duration_ns=0,
        status_code=2,
    )
    assert spans_to_otlp_json([span]) == snapshot["result"]


def test_json_conventions():
    request = parse_traces_json((CONFORMANCE / "otlp" / "python-sdk" / "000-traces.json").read_bytes())
    doc = spans_to_otlp_json(decoded_spans(request.SerializeToString()))
    rs = doc["resourceSpans"][0]
    assert set(rs) == {"resource", "scopeSpans"}  # no schemaUrl: it is empty
    assert rs["scopeSpans"][0]["scope"] == {"name": "acceptance.frontend", "version": "0.1.0"}
    spans = {s["spanId"]: s for s in rs["scopeSpans"][0]["spans"]}
    server = spans["2f2bb69d7c7864ca"]
    assert server["traceId"] == "5ddc95fa851ad7443f44385e7a667d93"
    assert "parentSpanId" not in server and "traceState" not in server and "links" not in server
    assert server["startTimeUnixNano"] == "1795877429328321009"  # int64 as a string
    assert server["endTimeUnixNano"] == "1795877429335142910"
    assert server["kind"] == 2 and server["flags"] == 256  # enums and uint32 as numbers
    assert server["status"] == {}
    assert {"key": "request.num", "value": {"intValue": "0"}} in server["attributes"]
    assert {"key": "http.request.method", "value": {"stringValue": "GET"}} in server["attributes"]
    assert server["events"] == [
        {
            "timeUnixNano": "1795877429328361287",
            "name": "cart.loaded",
            "attributes": [
                {"key": "items", "value": {"intValue": "3"}},
                {"key": "currency", "value": {"stringValue": "EUR"}},
            ],
        }
    ]
    linked = spans["f28c8f13cc581b6e"]
    assert linked["links"] == [
        {
            "traceId": "5ddc95fa851ad7443f44385e7a667d93",
            "spanId": "2f2bb69d7c7864ca",
            "attributes": [{"key": "link.reason", "value": {"stringValue": "retry-of"}}],
            "flags": 256,
        }
    ]


def test_json_value_types():
    attributes = {"s": "sx", "i": "i-3", "b": "btrue", "d": "d1.5", "nan": "dnan", "inf": "d-inf", "y": "yAAE="}
    attributes |= {"n": "n", "a": 'a{"arrayValue":{"values":[{"doubleValue":NaN},{"intValue":"2"}]}}'}
    span = Span(
        trace_id=b"\x01" * 16,
        span_id=b"\x02" * 8,
        parent_span_id=b"\x03" * 8,
        name="n",
        kind=1,
        start_ns=5,
        duration_ns=1,
        status_code=2,
        status_message="bad",
        trace_state="k=v",
        attributes=attributes,
        dropped_attributes_count=2,
        dropped_events_count=3,
        dropped_links_count=4,
        resource=Resource({"service.name": "sv"}, 1, "https://r"),
        scope=Scope("lib", "", {"x": "btrue"}, 0, "https://s"),
    )
    doc = spans_to_otlp_json([span])
    rs = doc["resourceSpans"][0]
    assert rs["schemaUrl"] == "https://r" and rs["resource"]["droppedAttributesCount"] == 1
    assert rs["scopeSpans"][0]["schemaUrl"] == "https://s"
    assert rs["scopeSpans"][0]["scope"] == {"name": "lib", "attributes": [{"key": "x", "value": {"boolValue": True}}]}
    out = rs["scopeSpans"][0]["spans"][0]
    assert {a["key"]: a["value"] for a in out["attributes"]} == {
        "s": {"stringValue": "x"},
        "i": {"intValue": "-3"},
        "b": {"boolValue": True},
        "d": {"doubleValue": 1.5},
        "nan": {"doubleValue": "NaN"},
        "inf": {"doubleValue": "-Infinity"},
        "y": {"bytesValue": "AAE="},
        "n": {},
        "a": {"arrayValue": {"values": [{"doubleValue": "NaN"}, {"intValue": "2"}]}},
    }
    assert out["parentSpanId"] == "0303030303030303" and out["traceState"] == "k=v"
    assert (out["droppedAttributesCount"], out["droppedEventsCount"], out["droppedLinksCount"]) == (2, 3, 4)
    assert out["status"] == {"message": "bad", "code": 2}
    json.dumps(doc, allow_nan=False)  # strict JSON: no bare NaN


@pytest.mark.parametrize("seed", range(10))
def test_json_round_trip_through_the_json_receiver(seed):
    request = random_request(seed)
    spans = decoded_spans(request.SerializeToString())
    body = json.dumps(spans_to_otlp_json(spans), allow_nan=False).encode()
    result = decode_traces_json(body)
    assert result.rejected_spans == 0, result.error_message
    again = spans_from_arrow(result.batch.spans, result.batch.resources, result.batch.scopes)
    assert canonical(spans_to_traces_data(again)) == canonical(request)


def test_json_and_protobuf_encodings_agree():
    spans = decoded_spans(random_request(11).SerializeToString())
    from_json = parse_traces_json(json.dumps(spans_to_otlp_json(spans)).encode())
    assert canonical(from_json) == canonical(spans_to_traces_data(spans))


def test_times_beyond_int64_survive():
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=2**64 - 10, end_time_unix_nano=2**64 - 1
    )
    span.events.add(time_unix_nano=2**64 - 5)
    spans = decoded_spans(request.SerializeToString())
    assert canonical(spans_to_traces_data(spans)) == canonical(request)
    out = spans_to_otlp_json(spans)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert out["startTimeUnixNano"] == str(2**64 - 10) and out["events"][0]["timeUnixNano"] == str(2**64 - 5)
