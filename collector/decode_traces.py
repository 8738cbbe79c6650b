"""Decode OTLP trace export requests (protobuf bytes) into a :class:`SpanBatch`.

This runs for every span received, so it is built for speed:

* The request is parsed by upb with a private copy of the OTLP trace schema in which the
  resource, the scope and every span are ``bytes`` (the wire format is the same).
* The spans are read column-wise in numpy walks over their bytes (:class:`~.wire.FieldWalk`,
  :func:`_walked_columns`): one over the spans, one over their statuses, events and links.
  Ids, names and strings are cut out of the buffer by one Arrow ``take`` each; no Python
  object is built per span field. Spans in an encoding the walks do not expect (fields out of
  order, repeated or unknown, long varints), and invalid spans, are parsed one by one by the
  official classes instead (:func:`_parsed_columns`, ``list(map(attrgetter(field), spans))``
  per field), with the same columns; that path writes the rejection messages.
* Attributes are decoded by numpy in :mod:`.decode_attributes` where they lie (one by one,
  behind a cache, when there are few); maps are assembled from flat offsets/keys/values
  arrays, see :mod:`.span_columns`.
* Resources and scopes repeat: their decoded form is cached by their bytes. The request walk,
  resources, scopes and the partial-success message are shared with the log decoder in
  :mod:`.decode_common`.

``bench/decode.py`` measures it against ``ParseFromString`` alone.

Invalid spans (bad ids, out-of-range enums, a bad link) are rejected one by one and reported
in :attr:`DecodeResult.error_message`; the valid spans of the request are kept (OTLP partial
success). A request that cannot be parsed raises :class:`DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from spanlake.collector import decode_common as common
from spanlake.collector import span_columns as col
from spanlake.collector import wire
from spanlake.collector.decode_attributes import AttributeDecodeError, decode_key_values, decode_key_values_at
from spanlake.collector.decode_common import DecodeError, flatten, id_problem, remember
from spanlake.model import SPAN_SCHEMA, SpanBatch

__all__ = ["DecodeError", "DecodeResult", "SpanPosition", "decode_export_trace_request", "decode_request_bytes"]

#: Position of a span in a request: (resourceSpans index, scopeSpans index, spans index).
SpanPosition = tuple[int, int, int]


@dataclass
class DecodeResult:
    batch: SpanBatch
    rejected_spans: int = 0
    error_message: str = ""  # empty when nothing was rejected


# ---------------------------------------------------------------------------------------------
# The lazy schema: OTLP traces with attributes, resource, scope and status left as raw bytes
# ---------------------------------------------------------------------------------------------


# ExportTraceServiceRequest and TracesData are the same on the wire (field 1, ResourceSpans).
# Spans stay raw bytes, read column-wise by :func:`_walked_columns`; the one-by-one path parses
# them with the Span class of a copy in which attributes and the status stay bytes.
_LazyTracesData = common.lazy_message_class(
    trace_pb2, [("ResourceSpans", "resource"), ("ScopeSpans", "scope"), ("ScopeSpans", "spans")], "TracesData"
)
_LazySpan = common.lazy_message_class(
    trace_pb2,
    [("Span", "attributes"), ("Span", "status"), ("Span.Event", "attributes"), ("Span.Link", "attributes")],
    "Span",
)

_SPAN_FIELDS = [
    attrgetter(name)
    for name in (
        "trace_id",
        "span_id",
        "parent_span_id",
        "trace_state",
        "flags",
        "name",
        "kind",
        "start_time_unix_nano",
        "end_time_unix_nano",
        "attributes",
        "dropped_attributes_count",
        "events",
        "dropped_events_count",
        "links",
        "dropped_links_count",
        "status",
    )
]
_event_row = attrgetter("time_unix_nano", "name", "attributes", "dropped_attributes_count")
_link_row = attrgetter("trace_id", "span_id", "trace_state", "flags", "attributes", "dropped_attributes_count")
_PATH = ("resourceSpans", "scopeSpans", "spans")
_GROUP_COLUMNS = ("service_name", "resource_id", "scope_id", "scope_name", "scope_version")

#: (start, end) of a field's payload in every message of a walk.
_Ranges = tuple[np.ndarray, np.ndarray]

# Tags (field number << 3 | wire type), in field-number order.
_TRACE_ID, _SPAN_ID, _TRACE_STATE, _PARENT_SPAN_ID = 0x0A, 0x12, 0x1A, 0x22  # bytes, string
_NAME = 0x2A
_KIND = 0x30  # varint
_START, _END = 0x39, 0x41  # fixed64
_ATTRIBUTE = 0x4A
_DROPPED_ATTRIBUTES = 0x50
_EVENT = 0x5A
_DROPPED_EVENTS = 0x60
_LINK = 0x6A
_DROPPED_LINKS = 0x70
_STATUS = 0x7A
_FLAGS = 16 << 3 | 5  # fixed32, a two-byte tag
_STATUS_MESSAGE, _STATUS_CODE = 0x12, 0x18
_EVENT_TIME, _EVENT_NAME, _EVENT_ATTRIBUTE, _EVENT_DROPPED_ATTRIBUTES = 0x09, 0x12, 0x1A, 0x20
_LINK_TRACE_ID, _LINK_SPAN_ID, _LINK_TRACE_STATE, _LINK_ATTRIBUTE = 0x0A, 0x12, 0x1A, 0x22
_LINK_DROPPED_ATTRIBUTES, _LINK_FLAGS = 0x28, 0x35
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


# Statuses (decoded once per distinct serialized form; resources and scopes: decode_common)
# ---------------------------------------------------------------------------------------------

_status_cache: dict[bytes, tuple[int, str]] = {}


def _statuses(raws: list[bytes]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """(codes, messages) of serialized Status messages; most are empty or repeat."""
    table = {}
    for raw in set(raws):
        decoded = _status_cache.get(raw)
        if decoded is None:
            status = Status.FromString(raw)
            decoded = remember(_status_cache, raw, (status.code, status.message))
        table[raw] = decoded
    codes, messages = zip(*map(table.__getitem__, raws))
    return codes, messages


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_export_trace_request(data: bytes) -> DecodeResult:
    """Decode a serialized ``ExportTraceServiceRequest`` (or ``TracesData``) into a batch."""
    return decode_request_bytes(data)


def decode_request_bytes(data: bytes, span_errors: dict[SpanPosition, str] | None = None) -> DecodeResult:
    """Like :func:`decode_export_trace_request`; ``span_errors`` rejects spans found bad earlier.

    The OTLP/JSON receiver passes the spans whose ids were not hex this way.
    """
    try:
        request = _LazyTracesData.FromString(bytes(data))
        raws, groups = common.gather(request.resource_spans, attrgetter("scope_spans"), attrgetter("spans"))
        if not raws:
            return DecodeResult(SpanBatch.empty())
        try:
            columns, problems = _walked_columns(*wire.packed(raws))
        except wire.Unusual:
            columns, problems = _parsed_columns([_LazySpan.FromString(raw) for raw in raws])
        return _result(columns, problems, groups, span_errors or {})
    except (ProtoDecodeError, AttributeDecodeError) as e:
        raise DecodeError(f"request is not a valid ExportTraceServiceRequest: {e}") from None


def _result(
    columns: dict[str, pa.Array], problems: dict[int, str], groups: list[common.ScopeGroup],
    span_errors: dict[SpanPosition, str],
) -> DecodeResult:
    group_of_span, group_cols = common.group_columns(groups)
    columns.update(zip(_GROUP_COLUMNS, group_cols))
    table = pa.Table.from_arrays([columns[name] for name in SPAN_SCHEMA.names], schema=SPAN_SCHEMA)
    common.add_positional_errors(span_errors, groups, problems)
    message = common.rejection_message(problems, groups, _PATH, ("span", "spans"))
    table, groups = common.drop_rejected(table, problems, groups, group_of_span)
    return DecodeResult(SpanBatch(table, *common.side_tables(groups)), len(problems), message)


def _parsed_columns(spans: list[Any]) -> tuple[dict[str, pa.Array], dict[int, str]]:
    """The span columns (all but the group ones) of spans parsed one by one, and the spans found
    bad."""
    n = len(spans)
    (
        trace_ids,
        span_ids,
        parent_ids,
        trace_states,
        flags,
        names,
        kinds,
        starts,
        ends,
        attributes,
        dropped_attributes,
        events,
        dropped_events,
        links,
        dropped_links,
        statuses,
    ) = [list(map(get, spans)) for get in _SPAN_FIELDS]
    status_codes, status_messages = _statuses(statuses)

    problems = _check_spans(trace_ids, span_ids, parent_ids, kinds, status_codes)
    span_attrs = flatten(attributes)
    span_attr_counts = np.fromiter(map(len, attributes), np.int64, n)
    event_cols, event_counts, event_attrs, event_attr_counts = _children(events, _event_row, 2, n)
    link_cols, link_counts, link_attrs, link_attr_counts = _children(links, _link_row, 4, n)
    if link_cols:
        _check_links(link_cols[0], link_cols[1], link_counts, problems)

    keys, values = decode_key_values(span_attrs + event_attrs + link_attrs)
    n_span, n_event = len(span_attrs), len(event_attrs)
    attr_map, promoted = col.span_attributes(keys.slice(0, n_span), values.slice(0, n_span), span_attr_counts)

    start_u64 = np.fromiter(starts, np.uint64, n)
    end_u64 = np.fromiter(ends, np.uint64, n)
    return {
        "trace_id": pa.array(trace_ids, pa.binary()),
        "span_id": pa.array(span_ids, pa.binary()),
        "parent_span_id": col.nullable_ids(parent_ids),
        "trace_state": col.strings(trace_states),
        "flags": col.uint32s(flags),
        "name": pa.array(names, pa.string()),
        "kind": col.small_enums(kinds),
        "start_ns": pa.array(start_u64.view(np.int64)),
        # Wrapping uint64 subtraction, viewed as int64, is end minus start even when negative.
        "duration_ns": pa.array((end_u64 - start_u64).view(np.int64)),
        "status_code": col.small_enums(status_codes),
        "status_message": col.strings(status_messages),
        "attributes": attr_map,
        **promoted,
        "dropped_attributes_count": col.uint32s(dropped_attributes),
        "events": col.events(
            event_cols, event_counts, event_attr_counts, keys.slice(n_span, n_event), values.slice(n_span, n_event)
        ),
        "dropped_events_count": col.uint32s(dropped_events),
        "links": col.links(
            link_cols, link_counts, link_attr_counts, keys.slice(n_span + n_event), values.slice(n_span + n_event)
        ),
        "dropped_links_count": col.uint32s(dropped_links),
    }, problems


def _walked_columns(data: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> tuple[dict[str, pa.Array], dict[int, str]]:
    """:func:`_parsed_columns` of the spans at ``[starts[i], ends[i])`` of ``data``, read in
    one :class:`~.wire.FieldWalk` (and one per level below: status, events, links). Raises
    :class:`~.wire.Unusual` for spans it does not handle, which include invalid ones (their
    rejection messages come from the one-by-one path)."""
    src = np.frombuffer(data, np.uint8)
    walk = wire.FieldWalk(src, starts, ends)
    trace_ids = walk.length_delimited(_TRACE_ID)
    span_ids = walk.length_delimited(_SPAN_ID)
    trace_states = walk.length_delimited(_TRACE_STATE)
    parent_ids = walk.length_delimited(_PARENT_SPAN_ID)
    # flags (field 16) comes here in the .proto's declaration order, at the end in number order.
    before = walk.pos.copy()
    flags = walk.fixed(_FLAGS, 4)
    flagged = walk.pos != before
    names = walk.length_delimited(_NAME)
    kinds = walk.small_varint(_KIND)
    start_u64 = walk.fixed(_START, 8)
    end_u64 = walk.fixed(_END, 8)
    attr_rows, attr_starts, attr_ends = walk.repeated(_ATTRIBUTE)
    dropped_attributes = walk.small_varint(_DROPPED_ATTRIBUTES)
    event_rows, event_starts, event_ends = walk.repeated(_EVENT)
    dropped_events = walk.small_varint(_DROPPED_EVENTS)
    link_rows, link_starts, link_ends = walk.repeated(_LINK)
    dropped_links = walk.small_varint(_DROPPED_LINKS)
    status = walk.length_delimited(_STATUS)
    before = walk.pos.copy()
    flags |= walk.fixed(_FLAGS, 4)
    if (flagged & (walk.pos != before)).any():
        raise wire.Unusual("flags given twice")
    walk.finish()
    rd = walk.rd
    _check_walked_ids(rd, trace_ids, span_ids, parent_ids)

    status_walk = wire.FieldWalk(src, *status)
    status_messages = status_walk.length_delimited(_STATUS_MESSAGE)
    status_codes = status_walk.small_varint(_STATUS_CODE)
    status_walk.finish()

    n = len(starts)
    keys, values = decode_key_values_at(data, attr_starts, attr_ends)
    attr_map, promoted = col.span_attributes(keys, values, np.bincount(attr_rows, minlength=n))
    parent_null = parent_ids[1] == parent_ids[0]
    return {
        "trace_id": wire.pieces(data, *trace_ids, pa.binary()),
        "span_id": wire.pieces(data, *span_ids, pa.binary()),
        "parent_span_id": wire.pieces(data, *parent_ids, pa.binary(), parent_null if parent_null.any() else None),
        "trace_state": wire.strings(data, *trace_states),
        "flags": pa.array(flags),
        "name": wire.strings(data, *names),
        "kind": pa.array(kinds),
        "start_ns": pa.array(start_u64.view(np.int64)),
        "duration_ns": pa.array((end_u64 - start_u64).view(np.int64)),
        "status_code": pa.array(status_codes),
        "status_message": wire.strings(data, *status_messages),
        "attributes": attr_map,
        **promoted,
        "dropped_attributes_count": pa.array(dropped_attributes.astype(np.uint32)),
        "events": _walked_events(data, src, event_starts, event_ends, np.bincount(event_rows, minlength=n)),
        "dropped_events_count": pa.array(dropped_events.astype(np.uint32)),
        "links": _walked_links(data, src, link_starts, link_ends, np.bincount(link_rows, minlength=n)),
        "dropped_links_count": pa.array(dropped_links.astype(np.uint32)),
    }, {}


def _check_walked_ids(rd: wire.Reader, trace_ids: _Ranges, span_ids: _Ranges, parent_ids: _Ranges | None) -> None:
    """Declines (:class:`~.wire.Unusual`) unless every trace id has 16 bytes, every span id 8,
    every parent id 8 or none, and none of them is all zeros."""
    ok = ((trace_ids[1] - trace_ids[0]) == 16).all() and ((span_ids[1] - span_ids[0]) == 8).all()
    ok = ok and not wire.all_zero(rd, trace_ids[0], 16).any() and not wire.all_zero(rd, span_ids[0], 8).any()
    if ok and parent_ids is not None:
        length = parent_ids[1] - parent_ids[0]
        set_at = np.flatnonzero(length)
        ok = (length[set_at] == 8).all() and not wire.all_zero(rd, parent_ids[0][set_at], 8).any()
    if not ok:
        raise wire.Unusual("an invalid id")


def _walked_events(data: pa.Buffer, src: np.ndarray, starts: np.ndarray, ends: np.ndarray, counts: np.ndarray) -> pa.Array:
    if not len(starts):  # the usual case; a walk over nothing still costs its ~40 calls
        return col.no_events(counts)
    walk = wire.FieldWalk(src, starts, ends)
    times = walk.fixed(_EVENT_TIME, 8)
    names = walk.length_delimited(_EVENT_NAME)
    attr_rows, attr_starts, attr_ends = walk.repeated(_EVENT_ATTRIBUTE)
    dropped = walk.small_varint(_EVENT_DROPPED_ATTRIBUTES)
    walk.finish()
    keys, values = decode_key_values_at(data, attr_starts, attr_ends)
    return col.event_lists(
        counts,
        pa.array(times.view(np.int64)),
        wire.strings(data, *names),
        col.map_array(np.bincount(attr_rows, minlength=len(starts)), keys, values),
        pa.array(dropped.astype(np.uint32)),
    )


def _walked_links(data: pa.Buffer, src: np.ndarray, starts: np.ndarray, ends: np.ndarray, counts: np.ndarray) -> pa.Array:
    if not len(starts):
        return col.no_links(counts)
    walk = wire.FieldWalk(src, starts, ends)
    trace_ids = walk.length_delimited(_LINK_TRACE_ID)
    span_ids = walk.length_delimited(_LINK_SPAN_ID)
    trace_states = walk.length_delimited(_LINK_TRACE_STATE)
    attr_rows, attr_starts, attr_ends = walk.repeated(_LINK_ATTRIBUTE)
    dropped = walk.small_varint(_LINK_DROPPED_ATTRIBUTES)
    flags = walk.fixed(_LINK_FLAGS, 4)
    walk.finish()
    _check_walked_ids(walk.rd, trace_ids, span_ids, None)
    keys, values = decode_key_values_at(data, attr_starts, attr_ends)
    return col.link_lists(
        counts,
        wire.pieces(data, *trace_ids, pa.binary()),
        wire.pieces(data, *span_ids, pa.binary()),
        wire.strings(data, *trace_states),
        pa.array(flags),
        col.map_array(np.bincount(attr_rows, minlength=len(starts)), keys, values),
        pa.array(dropped.astype(np.uint32)),
    )


def _children(
    containers: list[Any], row: attrgetter, attr_column: int, n: int
) -> tuple[tuple[tuple[Any, ...], ...], np.ndarray, list[bytes], np.ndarray]:
    """Columns of the events (or links) of all spans, their count per span, and their attributes."""
    children = flatten(containers)
    if not children:
        return (), np.zeros(n, np.int64), [], np.zeros(0, np.int64)
    counts = np.fromiter(map(len, containers), np.int64, n)
    cols = tuple(zip(*map(row, children)))
    attrs = cols[attr_column]
    attr_counts = np.fromiter(map(len, attrs), np.int64, len(children))
    return cols, counts, flatten(attrs), attr_counts


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _check_spans(
    trace_ids: list[bytes],
    span_ids: list[bytes],
    parent_ids: list[bytes],
    kinds: list[int],
    status_codes: tuple[int, ...],
) -> dict[int, str]:
    """Span index -> what is wrong with it. Whole-column checks first; a loop only on failure."""
    if (
        set(map(len, trace_ids)) == {16}
        and _ZERO_TRACE_ID not in trace_ids
        and set(map(len, span_ids)) == {8}
        and _ZERO_SPAN_ID not in span_ids
        and set(map(len, parent_ids)) <= {0, 8}
        and _ZERO_SPAN_ID not in parent_ids
        and 0 <= min(kinds) <= max(kinds) <= 255
        and 0 <= min(status_codes) <= max(status_codes) <= 255
    ):
        return {}
    problems: dict[int, str] = {}
    for i, (tid, sid, pid, kind, code) in enumerate(zip(trace_ids, span_ids, parent_ids, kinds, status_codes)):
        problem = (
            id_problem("traceId", tid, 16)
            or id_problem("spanId", sid, 8)
            or id_problem("parentSpanId", pid, 8, optional=True)
            or (None if 0 <= kind <= 255 else f"kind is {kind}, expected 0..255")
            or (None if 0 <= code <= 255 else f"status.code is {code}, expected 0..255")
        )
        if problem:
            problems[i] = problem
    return problems


def _check_links(
    trace_ids: tuple[bytes, ...], span_ids: tuple[bytes, ...], counts: np.ndarray, problems: dict[int, str]
) -> None:
    """Reject the spans that carry an invalid link."""
    if (
        set(map(len, trace_ids)) == {16}
        and _ZERO_TRACE_ID not in trace_ids
        and set(map(len, span_ids)) == {8}
        and _ZERO_SPAN_ID not in span_ids
    ):
        return
    owners = np.repeat(np.arange(len(counts)), counts).tolist()
    first = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
    for j, (tid, sid) in enumerate(zip(trace_ids, span_ids)):
        owner = owners[j]
        link = f"links[{j - first[owner]}]"
        problem = id_problem(f"{link}.traceId", tid, 16) or id_problem(f"{link}.spanId", sid, 8)
        if problem:
            problems.setdefault(owner, problem)
