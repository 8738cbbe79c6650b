"""The OTLP protobuf trace decoder: every field lands in its column, validation, errors."""

from __future__ import annotations

import base64
import math
import random
from contextlib import contextmanager
from typing import Iterator
from unittest.mock import patch

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from spanlake.collector import decode_attributes, span_columns, wire
from spanlake.collector.decode_attributes import decode_key_values
from spanlake.collector.decode_traces import DecodeError, decode_export_trace_request
from spanlake.model import (
    MISSING_SERVICE_NAME,
    PROMOTED_ATTRIBUTES,
    RESOURCE_SCHEMA,
    SCOPE_SCHEMA,
    SPAN_SCHEMA,
    encode_proto_any_value,
    encode_proto_any_value_with_form,
    resource_fingerprint,
    scope_fingerprint,
    string_form,
)
from tests.strategies import scalar_any_values

TRACE_ID = bytes(range(1, 17))
T0 = 1_700_000_000_000_000_000


def kv(key: str, value: object) -> KeyValue:
    out = KeyValue(key=key)
    if isinstance(value, AnyValue):
        out.value.CopyFrom(value)
    elif isinstance(value, bool):
        out.value.bool_value = value
    elif isinstance(value, int):
        out.value.int_value = value
    elif isinstance(value, float):
        out.value.double_value = value
    elif isinstance(value, bytes):
        out.value.bytes_value = value
    else:
        out.value.string_value = value
    return out


def span(i: int = 1, **fields: object) -> Span:
    defaults: dict[str, object] = dict(
        trace_id=TRACE_ID,
        span_id=i.to_bytes(8, "big"),
        name=f"op-{i}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T0 + i,
        end_time_unix_nano=T0 + i + 1000,
    )
    defaults.update(fields)
    return Span(**defaults)


def request(*spans: Span, service: str | None = "svc", resource_attrs: tuple = ()) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    if service is not None:
        rs.resource.attributes.append(kv("service.name", service))
    rs.resource.attributes.extend(kv(k, v) for k, v in resource_attrs)
    rs.scope_spans.add().spans.extend(spans)
    return req


def decode(req: ExportTraceServiceRequest):
    return decode_export_trace_request(req.SerializeToString())


def rows(req: ExportTraceServiceRequest) -> list[dict]:
    result = decode(req)
    assert result.rejected_spans == 0, result.error_message
    return result.batch.spans.to_pylist()


@contextmanager
def vectorized(on: bool) -> Iterator[None]:
    """Force the vectorized path (or the one-by-one path) whatever the number of attributes."""
    few = 0 if on else 10**9
    with patch.object(decode_attributes, "_FEW", few), patch.object(span_columns, "_FEW", few):
        yield


# ---------------------------------------------------------------------------------------------
# Every field
# ---------------------------------------------------------------------------------------------


def full_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
    rs.resource.attributes.extend([kv("service.name", "checkout"), kv("host.name", "h1"), kv("process.pid", 42)])
    rs.resource.dropped_attributes_count = 3
    ss = rs.scope_spans.add(schema_url="https://scope/schema")
    ss.scope.name = "lib"
    ss.scope.version = "1.2"
    ss.scope.attributes.append(kv("scope.attr", True))
    ss.scope.dropped_attributes_count = 4
    s = ss.spans.add(
        trace_id=TRACE_ID,
        span_id=b"\x01" * 8,
        parent_span_id=b"\x02" * 8,
        trace_state="vendor=1",
        flags=0x301,
        name="GET /orders/{id}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + 12345,
        dropped_attributes_count=5,
        dropped_events_count=6,
        dropped_links_count=7,
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
    )
    array = AnyValue()
    array.array_value.values.extend([AnyValue(int_value=1), AnyValue(string_value="x"), AnyValue(double_value=0.5)])
    kvlist = AnyValue()
    kvlist.kvlist_value.values.extend([kv("a", 1), kv("b", AnyValue(bytes_value=b"\x00\xff"))])
    s.attributes.extend(
        [
            kv("str", "value"),
            kv("int", -7),
            kv("big", 2**63 - 1),
            kv("double", 2.5),
            kv("bool", False),
            kv("bytes", b"\x00\x01\xfe"),
            kv("array", array),
            kv("kvlist", kvlist),
            KeyValue(key="empty"),
            kv("http.request.method", "GET"),
            kv("http.response.status_code", 503),
            kv("db.system", "postgresql"),
            kv("unicode ключ", "значение ✓"),
        ]
    )
    ev = s.events.add(time_unix_nano=T0 + 5, name="exception", dropped_attributes_count=8)
    ev.attributes.extend([kv("exception.type", "ValueError"), kv("http.request.method", "not promoted")])
    s.events.add(time_unix_nano=T0 + 6, name="second")
    link = s.links.add(
        trace_id=bytes(range(16, 32)), span_id=b"\x03" * 8, trace_state="k=v", flags=0x101, dropped_attributes_count=9
    )
    link.attributes.append(kv("link.reason", "retry"))
    return req


@pytest.mark.parametrize("fast", [True, False])
def test_every_field_lands_in_its_column(fast):
    with vectorized(fast):
        result = decode(full_request())
    assert result.rejected_spans == 0 and result.error_message == ""
    batch = result.batch
    assert batch.spans.schema == SPAN_SCHEMA
    assert batch.resources.schema == RESOURCE_SCHEMA
    assert batch.scopes.schema == SCOPE_SCHEMA
    (row,) = batch.spans.to_pylist()
    assert row["trace_id"] == TRACE_ID
    assert row["span_id"] == b"\x01" * 8
    assert row["parent_span_id"] == b"\x02" * 8
    assert row["trace_state"] == "vendor=1"
    assert row["flags"] == 0x301
    assert row["name"] == "GET /orders/{id}"
    assert row["kind"] == 3
    assert row["start_ns"] == T0 and row["duration_ns"] == 12345
    assert row["status_code"] == 2 and row["status_message"] == "boom"
    assert row["service_name"] == "checkout"
    assert row["scope_name"] == "lib" and row["scope_version"] == "1.2"
    assert (row["dropped_attributes_count"], row["dropped_events_count"], row["dropped_links_count"]) == (5, 6, 7)
    attrs = dict(row["attributes"])
    assert attrs == {
        "str": "svalue",
        "int": "i-7",
        "big": f"i{2**63 - 1}",
        "double": "d2.5",
        "bool": "bfalse",
        "bytes": "y" + base64.b64encode(b"\x00\x01\xfe").decode(),
        "array": 'a{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"x"},{"doubleValue":0.5}]}}',
        "kvlist": 'k{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}},'
        '{"key":"b","value":{"bytesValue":"AP8="}}]}}',
        "empty": "n",
        "unicode ключ": "sзначение ✓",
    }
    assert row["attr_http_request_method"] == "sGET"
    assert row["attr_http_response_status_code"] == "i503"
    assert row["attr_db_system"] == "spostgresql"
    assert row["attr_http_route"] is None and row["attr_peer_service"] is None
    assert row["events"] == [
        {
            "time_ns": T0 + 5,
            "name": "exception",
            "attributes": [("exception.type", "sValueError"), ("http.request.method", "snot promoted")],
            "dropped_attributes_count": 8,
        },
        {"time_ns": T0 + 6, "name": "second", "attributes": [], "dropped_attributes_count": 0},
    ]
    assert row["links"] == [
        {
            "trace_id": bytes(range(16, 32)),
            "span_id": b"\x03" * 8,
            "trace_state": "k=v",
            "flags": 0x101,
            "attributes": [("link.reason", "sretry")],
            "dropped_attributes_count": 9,
        }
    ]
    (res,) = batch.resources.to_pylist()
    res_attrs = [("service.name", "scheckout"), ("host.name", "sh1"), ("process.pid", "i42")]
    assert res == {
        "resource_id": resource_fingerprint(res_attrs, 3, "https://opentelemetry.io/schemas/1.26.0"),
        "service_name": "checkout",
        "attributes": res_attrs,
        "dropped_attributes_count": 3,
        "schema_url": "https://opentelemetry.io/schemas/1.26.0",
    }
    assert row["resource_id"] == res["resource_id"]
    (scope,) = batch.scopes.to_pylist()
    assert scope == {
        "scope_id": scope_fingerprint("lib", "1.2", [("scope.attr", "btrue")], 4, "https://scope/schema"),
        "name": "lib",
        "version": "1.2",
        "attributes": [("scope.attr", "btrue")],
        "dropped_attributes_count": 4,
        "schema_url": "https://scope/schema",
    }
    assert row["scope_id"] == scope["scope_id"]


@pytest.mark.parametrize("fast", [True, False])
def test_every_promoted_key_goes_to_its_column_and_out_of_the_map(fast):
    attrs = [kv(key, f"v-{col}") for col, key in PROMOTED_ATTRIBUTES.items()] + [kv("other", 1)]
    others = [
        span(2, attributes=[kv("http.route", "/x"), kv("http.route", "/last")]),
        span(3),
        span(4, attributes=attrs[:2]),
    ]
    with vectorized(fast):
        row, repeated, bare, some = rows(request(span(attributes=attrs), *others))
    for col in PROMOTED_ATTRIBUTES:
        assert row[col] == f"sv-{col}"
    assert row["attributes"] == [("other", "i1")]
    assert repeated["attr_http_route"] == "s/last" and repeated["attributes"] == []
    assert all(bare[col] is None for col in PROMOTED_ATTRIBUTES) and bare["attributes"] == []
    assert [c for c in PROMOTED_ATTRIBUTES if some[c] is not None] == list(PROMOTED_ATTRIBUTES)[:2]


def test_root_span_has_null_parent_and_defaults():
    (row,) = rows(request(Span(trace_id=TRACE_ID, span_id=b"\x01" * 8)))
    assert row["parent_span_id"] is None
    assert row["name"] == "" and row["kind"] == 0 and row["status_code"] == 0 and row["flags"] == 0
    assert row["start_ns"] == 0 and row["duration_ns"] == 0
    assert row["attributes"] == [] and row["events"] == [] and row["links"] == []


def test_negative_duration_and_large_times_are_stored_as_sent():
    a = span(1, start_time_unix_nano=T0 + 500, end_time_unix_nano=T0)
    b = span(2, start_time_unix_nano=2**63 + 5, end_time_unix_nano=2**63 + 7)
    ra, rb = rows(request(a, b))
    assert ra["duration_ns"] == -500
    assert rb["start_ns"] == 2**63 + 5 - 2**64 and rb["duration_ns"] == 2  # int64 view of the uint64


def test_kind_and_status_numbers_as_sent():
    spans = [span(i, kind=i % 6, status=Status(code=i % 3)) for i in range(1, 13)]
    got = rows(request(*spans))
    assert [(r["kind"], r["status_code"]) for r in got] == [(i % 6, i % 3) for i in range(1, 13)]
    (odd,) = rows(request(span(1, kind=7, status=Status(code=9))))
    assert (odd["kind"], odd["status_code"]) == (7, 9)


def test_service_name():
    assert rows(request(span(), service=None))[0]["service_name"] == MISSING_SERVICE_NAME
    req = request(span(), service=None, resource_attrs=(("service.name", 42),))
    assert rows(req)[0]["service_name"] == "42"


def test_many_resources_and_scopes_are_deduplicated_by_fingerprint():
    req = ExportTraceServiceRequest()
    n = 0
    for service in ("a", "b", "a"):  # the second "a" is the same resource again
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", service))
        for scope in ("s1", "s2"):
            ss = rs.scope_spans.add()
            ss.scope.name = scope
            for _ in range(3):
                n += 1
                ss.spans.append(span(n))
    req.resource_spans.add().scope_spans.add()  # empty groups are ignored
    batch = decode(req).batch
    got = batch.spans.to_pylist()
    assert [r["service_name"] for r in got] == ["a"] * 6 + ["b"] * 6 + ["a"] * 6
    assert [r["scope_name"] for r in got] == (["s1"] * 3 + ["s2"] * 3) * 3
    assert batch.resources.num_rows == 2 and batch.scopes.num_rows == 2
    res_ids = {r["service_name"]: r["resource_id"] for r in batch.resources.to_pylist()}
    assert all(r["resource_id"] == res_ids[r["service_name"]] for r in got)
    scope_ids = {s["name"]: s["scope_id"] for s in batch.scopes.to_pylist()}
    assert all(r["scope_id"] == scope_ids[r["scope_name"]] for r in got)


def test_resource_schema_url_distinguishes_resources():
    req = request(span(1))
    second = req.resource_spans.add(schema_url="x")
    second.CopyFrom(req.resource_spans[0])
    second.schema_url = "x"
    assert decode(req).batch.resources.num_rows == 2


def test_empty_request_gives_an_empty_batch():
    result = decode_export_trace_request(b"")
    assert result.batch.num_spans == 0 and result.rejected_spans == 0
    assert result.batch.spans.schema == SPAN_SCHEMA


def test_decoding_twice_gives_the_same_batch():
    data = full_request().SerializeToString()
    first, second = decode_export_trace_request(data), decode_export_trace_request(data)
    assert first.batch.spans.equals(second.batch.spans)
    assert first.batch.resources.equals(second.batch.resources)


def test_large_batch_with_mixed_spans():
    rng = random.Random(3)
    spans = []
    for i in range(1, 600):
        s = span(i, attributes=[kv(f"k{j}", rng.choice(["x", 1, 2.5, True, "y" * 300])) for j in range(i % 7)])
        if i % 5 == 0:
            s.events.add(time_unix_nano=T0, name="e").attributes.append(kv("n", i))
        if i % 11 == 0:
            s.links.add(trace_id=TRACE_ID, span_id=b"\x09" * 8)
        spans.append(s)
    got = rows(request(*spans))
    for s, row in zip(spans, got):
        assert dict(row["attributes"]) == {a.key: encode_proto_any_value(a.value) for a in s.attributes}
        expected_events = [[(a.key, f"i{a.value.int_value}") for a in e.attributes] for e in s.events]
        assert [e["attributes"] for e in row["events"]] == expected_events
        assert [(link["trace_id"], link["span_id"]) for link in row["links"]] == [
            (link.trace_id, link.span_id) for link in s.links
        ]


# ---------------------------------------------------------------------------------------------
# Attribute values: the vectorized decoder equals the model's reference encoding
# ---------------------------------------------------------------------------------------------

_scalars = scalar_any_values()


def _array(values: list[AnyValue]) -> AnyValue:
    out = AnyValue()
    out.array_value.values.extend(values)
    return out


def _kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
    out = AnyValue()
    out.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in pairs)
    return out


_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(_array),
        st.lists(st.tuples(st.text(max_size=5), inner), max_size=3).map(_kvlist),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=200), _values), max_size=40), st.booleans())
def test_attribute_values_match_the_reference_encoding(pairs, fast):
    raws = [KeyValue(key=k, value=v).SerializeToString() for k, v in pairs]
    with vectorized(fast):
        keys, values = decode_key_values(raws)
    expected = [(k, encode_proto_any_value(v)) for k, v in pairs]
    assert list(zip(keys.to_pylist(), values.to_pylist())) == expected


@settings(max_examples=300, deadline=None)
@given(_values)
def test_value_and_string_form_in_one_pass_match_the_reference(value):
    # Log bodies: the encoding and its string form, written without a JSON round trip.
    encoded = encode_proto_any_value(value)
    assert encode_proto_any_value_with_form(value) == (encoded, string_form(encoded))


@pytest.mark.parametrize("fast", [True, False])
def test_unusual_but_valid_attribute_encodings(fast):
    raws = [
        b"\x12\x03\x0a\x01x\x0a\x01k",  # value before key
        b"\x0a\x01k\x12\x03\x0a\x01x\x12\x02\x18\x05",  # value twice: merged, the int wins
        b"\x0a\x01k\x12\x02\x10\x05",  # bool encoded as 5
        b"\x0a\x81\x00k\x12\x02\x10\x01",  # non-minimal varint length
        b"\x0a\x01k",  # no value
        b"",  # nothing at all
    ]
    with vectorized(fast):
        keys, values = decode_key_values(raws)
    assert list(zip(keys.to_pylist(), values.to_pylist())) == [
        ("k", "sx"),
        ("k", "i5"),
        ("k", "btrue"),
        ("k", "btrue"),
        ("k", "n"),
        ("", "n"),
    ]


@pytest.mark.parametrize("fast", [True, False])
def test_doubles_keep_their_repr(fast):
    values = [0.1, -0.0, 1e300, math.inf, -math.inf, math.nan, 123456789.125]
    with vectorized(fast):
        _, got = decode_key_values([kv("d", v).SerializeToString() for v in values])
    assert got.to_pylist() == ["d" + repr(v) for v in values]


# ---------------------------------------------------------------------------------------------
# Validation: invalid spans are rejected one by one
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields, problem",
    [
        (dict(trace_id=b"\x01" * 5), "traceId is 5 bytes, expected 16"),
        (dict(trace_id=b""), "traceId is 0 bytes, expected 16"),
        (dict(trace_id=bytes(16)), "traceId is all zeros"),
        (dict(span_id=b"\x01" * 16), "spanId is 16 bytes, expected 8"),
        (dict(span_id=bytes(8)), "spanId is all zeros"),
        (dict(parent_span_id=b"\x01" * 3), "parentSpanId is 3 bytes, expected 8 or empty"),
        (dict(parent_span_id=bytes(8)), "parentSpanId is all zeros"),
        (dict(kind=300), "kind is 300, expected 0..255"),
        (dict(kind=-1), "kind is -1, expected 0..255"),
        (dict(status=Status(code=1000)), "status.code is 1000, expected 0..255"),
    ],
)
def test_an_invalid_span_is_rejected_and_the_others_kept(fields, problem):
    bad = span(3, **fields)
    result = decode(request(span(1), span(2), bad, span(4)))
    assert result.rejected_spans == 1
    assert result.error_message == f"1 span rejected: resourceSpans[0].scopeSpans[0].spans[2].{problem}"
    assert [r["name"] for r in result.batch.spans.to_pylist()] == ["op-1", "op-2", "op-4"]


@pytest.mark.parametrize(
    "link, problem",
    [
        (dict(trace_id=b"\x01" * 15, span_id=b"\x01" * 8), "links[1].traceId is 15 bytes, expected 16"),
        (dict(trace_id=TRACE_ID, span_id=b""), "links[1].spanId is 0 bytes, expected 8"),
        (dict(trace_id=TRACE_ID, span_id=bytes(8)), "links[1].spanId is all zeros"),
    ],
)
def test_a_bad_link_rejects_its_span(link, problem):
    good_link = Span.Link(trace_id=TRACE_ID, span_id=b"\x05" * 8)
    bad = span(2, links=[good_link, Span.Link(**link)])
    result = decode(request(span(1, links=[good_link]), bad))
    assert result.rejected_spans == 1
    assert result.error_message == f"1 span rejected: resourceSpans[0].scopeSpans[0].spans[1].{problem}"
    (kept,) = result.batch.spans.to_pylist()
    assert kept["name"] == "op-1" and len(kept["links"]) == 1


def test_rejections_across_groups_name_their_positions_and_drop_unused_resources():
    req = ExportTraceServiceRequest()
    for service in ("a", "b"):
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", service))
        rs.scope_spans.add().spans.extend([span(1), span(2, trace_id=b"x")])
    req.resource_spans[1].scope_spans[0].spans[0].span_id = b"y"
    result = decode(req)
    assert result.rejected_spans == 3
    assert result.error_message == (
        "3 spans rejected: resourceSpans[0].scopeSpans[0].spans[1].traceId is 1 bytes, expected 16; "
        "resourceSpans[1].scopeSpans[0].spans[0].spanId is 1 bytes, expected 8; "
        "resourceSpans[1].scopeSpans[0].spans[1].traceId is 1 bytes, expected 16"
    )
    assert [r["service_name"] for r in result.batch.spans.to_pylist()] == ["a"]
    assert result.batch.resources.column("service_name").to_pylist() == ["a"]


def test_many_rejections_are_summarised():
    result = decode(request(*[span(i, trace_id=b"") for i in range(1, 9)], span(9)))
    assert result.rejected_spans == 8 and result.batch.num_spans == 1
    assert result.error_message.startswith("8 spans rejected: resourceSpans[0].scopeSpans[0].spans[0].traceId")
    assert result.error_message.endswith("; and 3 more")


def test_all_spans_rejected_gives_an_empty_batch():
    result = decode(request(span(1, trace_id=b""), span(2, span_id=b"")))
    assert result.rejected_spans == 2 and result.batch.num_spans == 0
    assert result.batch.resources.num_rows == 0 and result.batch.scopes.num_rows == 0


# ---------------------------------------------------------------------------------------------
# Undecodable requests
# ---------------------------------------------------------------------------------------------


def test_random_bytes_raise_decode_error():
    rng = random.Random(7)
    raised = 0
    for _ in range(50):
        try:
            decode_export_trace_request(rng.randbytes(200))
        except DecodeError as e:
            assert "not a valid ExportTraceServiceRequest" in str(e)
            raised += 1
    assert raised >= 45  # a few random strings are valid (empty) protobuf by chance


def test_truncated_request_raises_decode_error():
    data = full_request().SerializeToString()
    for cut in (len(data) - 1, len(data) // 2, 7):
        with pytest.raises(DecodeError):
            decode_export_trace_request(data[:cut])


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + wire.varint(len(payload)) + payload


def request_of_span_bytes(span_bytes: bytes) -> bytes:
    """resource_spans { scope_spans { spans { <span_bytes> } } }, built by hand."""
    return _field(0x0A, _field(0x12, _field(0x12, span_bytes)))


def test_hand_built_request_decodes():
    result = decode_export_trace_request(request_of_span_bytes(span(1).SerializeToString()))
    assert result.batch.num_spans == 1


@pytest.mark.parametrize(
    "kv_bytes",
    [
        b"\x0a\xff",  # key length is an unterminated varint
        b"\x0a\x05ab",  # key longer than the attribute
        b"\x0a\x01k\x12\x05\x0a\x03ab",  # value longer than the attribute
        b"\x0a\x01k\x12\x02\x0a\x01",  # string value cut short
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_malformed_attribute_raises_decode_error(kv_bytes, fast):
    data = request_of_span_bytes(span(1).SerializeToString() + _field(0x4A, kv_bytes))
    with vectorized(fast), pytest.raises(DecodeError, match="not a valid ExportTraceServiceRequest"):
        decode_export_trace_request(data)


@pytest.mark.parametrize("fast", [True, False])
def test_invalid_utf8_in_an_attribute_raises_decode_error(fast):
    for kv_bytes in (b"\x0a\x01k\x12\x04\x0a\x02\xff\xfe", b"\x0a\x02\xff\xfe\x12\x03\x0a\x01v"):
        data = request_of_span_bytes(span(1).SerializeToString() + _field(0x4A, kv_bytes))
        with vectorized(fast), pytest.raises(DecodeError, match="UTF-8"):
            decode_export_trace_request(data)


def test_malformed_status_or_resource_raises_decode_error():
    with pytest.raises(DecodeError):
        decode_export_trace_request(request_of_span_bytes(span(1).SerializeToString() + _field(0x7A, b"\x1a")))
    with pytest.raises(DecodeError):
        decode_export_trace_request(_field(0x0A, _field(0x0A, b"\x0a\x09")))


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)
    with pytest.raises(ValueError):
        decode_export_trace_request(b"\xff\xff\xff")


def test_batch_arrays_are_valid_arrow():
    batch = decode(full_request()).batch
    for table in (batch.spans, batch.resources, batch.scopes):
        table.validate(full=True)
    assert isinstance(batch.spans.column("attributes").type, pa.MapType)
