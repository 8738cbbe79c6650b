"""The column-wise walk of spans against the spans parsed one by one.

``decode_export_trace_request`` reads the spans of a request (with their status, events and
links) in numpy walks over their bytes and falls back to the official classes for encodings
the walks do not handle, and for invalid spans, whose rejection messages that path writes. Both
must give the same columns; SDK-shaped spans must take the walk.
"""

from __future__ import annotations

from unittest.mock import patch

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from spanlake.collector import decode_attributes, decode_traces, span_columns, wire
from spanlake.collector.decode_traces import DecodeError, decode_export_trace_request
from tests.e2e.otlp_builders import kv
from tests.strategies import scalar_any_values

T = 1_700_000_000_000_000_000


def _columns(raws: list[bytes]) -> tuple[dict[str, pa.Array] | None, dict[str, pa.Array], dict[int, str]]:
    """(walked columns or None where the walk declines, parsed columns, parsed problems)."""
    parsed, problems = decode_traces._parsed_columns([decode_traces._LazySpan.FromString(r) for r in raws])
    try:
        walked, walked_problems = decode_traces._walked_columns(*wire.packed(raws))
        assert walked_problems == {}
    except wire.Unusual:
        walked = None
    return walked, parsed, problems


def _assert_same(walked: dict[str, pa.Array], parsed: dict[str, pa.Array]) -> None:
    assert list(walked) == list(parsed)
    for name, value in parsed.items():
        assert walked[name].type == value.type, name
        assert walked[name].to_pylist() == value.to_pylist(), name


def _sdk_span(i: int) -> Span:
    span = Span(
        trace_id=bytes([1 + i % 200]) * 16, span_id=bytes([1 + i % 250]) * 8,
        parent_span_id=b"" if i % 4 == 0 else bytes([2]) * 8, name=f"GET /items/{i % 7}", kind=2,
        start_time_unix_nano=T + i, end_time_unix_nano=T + i + 1_000_000, flags=0x100 if i % 3 else 0,
        attributes=[kv("http.request.method", "GET"), kv("http.route", f"/items/{i % 7}"), kv("n", i),
                    kv("ok", True), kv("net.peer.name", "db")],
        status=Status(code=2, message="boom") if i % 9 == 0 else Status(),
    )
    if i % 5 == 0:
        span.events.add(time_unix_nano=T + i + 5, name="exception",
                        attributes=[kv("exception.type", "ValueError"), kv("exception.message", f"bad {i}")])
    if i % 11 == 0:
        span.links.add(trace_id=bytes([9]) * 16, span_id=bytes([8]) * 8, trace_state="a=b", flags=0x100,
                       attributes=[kv("link.kind", "follows")])
    return span


def _request(raws: list[bytes]) -> bytes:
    request = decode_traces._LazyTracesData()
    resource_spans = request.resource_spans.add()
    resource_spans.scope_spans.add().spans.extend(raws)
    return request.SerializeToString()


@pytest.mark.parametrize("many", [False, True])
def test_sdk_shaped_spans_take_the_walk_and_agree(many: bool) -> None:
    count = decode_attributes._FEW if many else 20  # both attribute paths
    walked, parsed, problems = _columns([_sdk_span(i).SerializeToString() for i in range(count)])
    assert walked is not None and problems == {}
    _assert_same(walked, parsed)


def test_the_decoder_reads_sdk_spans_without_parsing_them_one_by_one() -> None:
    data = _request([_sdk_span(i).SerializeToString() for i in range(40)])
    with patch.object(decode_traces, "_parsed_columns", side_effect=AssertionError("parsed one by one")):
        result = decode_export_trace_request(data)
    assert result.batch.num_spans == 40


def _flags_first(span: Span) -> bytes:
    """``span`` with its flags right after the parent id, in the .proto's declaration order."""
    flags = span.flags
    span.flags = 0
    raw = span.SerializeToString()
    head = Span(trace_id=span.trace_id, span_id=span.span_id, trace_state=span.trace_state,
                parent_span_id=span.parent_span_id).SerializeToString()
    assert raw.startswith(head)
    return head + Span(flags=flags).SerializeToString() + raw[len(head):]


def test_flags_after_the_parent_id_are_read_too() -> None:
    raws = [_flags_first(_sdk_span(i)) for i in range(1, 12)]
    walked, parsed, _ = _columns(raws)
    assert walked is not None
    _assert_same(walked, parsed)
    assert set(parsed["flags"].to_pylist()) == {0, 0x100}


# Encodings the walk must decline, each valid protobuf (the one-by-one parse decides).
UNUSUAL = {
    "fields out of order": Span(name="late").SerializeToString() + _sdk_span(1).SerializeToString(),
    "flags in both places (the last wins)": _flags_first(_sdk_span(1)) + Span(flags=7).SerializeToString(),
    "a name given twice": _sdk_span(1).SerializeToString() + Span(name="again").SerializeToString(),
    "an unknown field": _sdk_span(1).SerializeToString() + bytes([0xA0, 0x06, 0x01]),
    "a kind above 127": Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, kind=300).SerializeToString(),
    "many dropped events": Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, dropped_events_count=500).SerializeToString(),
    "a status code above 127": Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, status=Status(code=200)).SerializeToString(),
    "a long name": Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, name="n" * 20_000).SerializeToString(),
    "an event with an unknown field": Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8).SerializeToString()
    + bytes([0x5A, 0x03, 0xA0, 0x06, 0x01]),
}

# Invalid spans: the walk declines, the one-by-one path rejects them by name.
INVALID = {
    "a short trace id": (Span(trace_id=b"\x01" * 5, span_id=b"\x01" * 8), "traceId is 5 bytes, expected 16"),
    "a zero span id": (Span(trace_id=b"\x01" * 16, span_id=bytes(8)), "spanId is all zeros"),
    "a zero parent id": (Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, parent_span_id=bytes(8)),
                         "parentSpanId is all zeros"),
    "a bad link": (Span(trace_id=b"\x01" * 16, span_id=b"\x01" * 8, links=[Span.Link(trace_id=b"\x01" * 3)]),
                   "links[0].traceId is 3 bytes, expected 16"),
}


@pytest.mark.parametrize("case", list(UNUSUAL))
def test_unusual_encodings_fall_back_to_the_official_parse(case: str) -> None:
    raws = [_sdk_span(i).SerializeToString() for i in range(1, 6)] + [UNUSUAL[case]]
    walked, parsed, _ = _columns(raws)
    assert walked is None
    result = decode_export_trace_request(_request(raws))
    assert result.batch.num_spans + result.rejected_spans == 6


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_spans_are_rejected_by_name_and_the_others_kept(case: str) -> None:
    span, problem = INVALID[case]
    raws = [_sdk_span(i).SerializeToString() for i in range(1, 6)] + [span.SerializeToString()]
    result = decode_export_trace_request(_request(raws))
    assert result.batch.num_spans == 5 and result.rejected_spans == 1
    assert problem in result.error_message


def test_a_span_running_past_its_end_fails_the_request() -> None:
    good = _sdk_span(1).SerializeToString()
    with pytest.raises(DecodeError, match="not a valid ExportTraceServiceRequest"):
        decode_export_trace_request(_request([good, good[:-3], good]))


def test_a_name_that_is_not_utf8_fails_the_request() -> None:
    raw = _sdk_span(1).SerializeToString().replace(b"GET /items/1", b"GET /items\xff\xfe")
    with pytest.raises(DecodeError):
        decode_export_trace_request(_request([raw] * 3))


_values = scalar_any_values(max_text=100, max_bytes=10)
_attributes = st.lists(st.tuples(st.sampled_from(["a", "b", "http.route", "db.system", "ключ"]), _values), max_size=4)


@st.composite
def _spans(draw: st.DrawFn) -> bytes:
    def kvs() -> list[KeyValue]:
        return [KeyValue(key=k, value=v) for k, v in draw(_attributes)]

    span = Span(
        trace_id=draw(st.sampled_from([b"\x07" * 16, b"\x00" * 15 + b"\x01"])),
        span_id=draw(st.sampled_from([b"\x09" * 8, b"\x00" * 7 + b"\x02"])),
        parent_span_id=draw(st.sampled_from([b"", b"\x03" * 8])),
        trace_state=draw(st.sampled_from(["", "k=v"])),
        flags=draw(st.sampled_from([0, 0x100, 2**32 - 1])),
        name=draw(st.text(max_size=30)),
        kind=draw(st.integers(0, 5)),
        start_time_unix_nano=draw(st.sampled_from([0, T, 2**64 - 1])),
        end_time_unix_nano=draw(st.sampled_from([0, T + 9, 2**63])),
        attributes=kvs(),
        dropped_attributes_count=draw(st.sampled_from([0, 3, 127])),
        dropped_events_count=draw(st.sampled_from([0, 1])),
        dropped_links_count=draw(st.sampled_from([0, 2])),
        status=Status(code=draw(st.integers(0, 2)), message=draw(st.sampled_from(["", "oops"]))),
    )
    for _ in range(draw(st.integers(0, 2))):
        span.events.add(time_unix_nano=draw(st.sampled_from([0, T])), name=draw(st.sampled_from(["", "e"])),
                        attributes=kvs(), dropped_attributes_count=draw(st.sampled_from([0, 4])))
    for _ in range(draw(st.integers(0, 2))):
        span.links.add(trace_id=b"\x05" * 16, span_id=b"\x06" * 8, trace_state=draw(st.sampled_from(["", "x=y"])),
                       flags=draw(st.sampled_from([0, 0x300])), attributes=kvs(),
                       dropped_attributes_count=draw(st.sampled_from([0, 5])))
    raw = span.SerializeToString()
    return _flags_first(span) if draw(st.booleans()) else raw


@settings(max_examples=150, deadline=None)
@given(st.lists(_spans(), min_size=1, max_size=10), st.booleans())
def test_any_valid_spans_walk_to_the_columns_of_the_official_parse(raws: list[bytes], vectorized: bool) -> None:
    few = 0 if vectorized else 10**9
    with patch.object(decode_attributes, "_FEW", few), patch.object(span_columns, "_FEW", few):
        walked, parsed, problems = _columns(raws)
    assert problems == {}
    assert walked is not None  # all in the encoding the walk handles
    _assert_same(walked, parsed)
