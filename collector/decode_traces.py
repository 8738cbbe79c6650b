"""Decode OTLP trace export requests (protobuf bytes) into a :class:`SpanBatch`.

This runs for every span received, so it is built for speed:

* The request is parsed by upb with a private copy of the OTLP trace schema in which span,
  event and link attributes are ``repeated bytes`` and the resource, scope and status are
  ``bytes`` (the wire format is the same). No attribute message is ever built.
* Span fields are read column-wise: ``list(map(attrgetter(field), spans))`` per field, so the
  loops run in C, and each Arrow array is built once per request.
* All attributes of the request (spans, events, links) are decoded together by numpy in
  :mod:`.decode_attributes` (one by one, behind a cache, when there are few); maps are
  assembled from flat offsets/keys/values arrays, see :mod:`.span_columns`.
* Resources, scopes and statuses repeat: their decoded form is cached by their bytes. The
  request walk, resources, scopes and the partial-success message are shared with the log
  decoder in :mod:`.decode_common`.

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
from spanlake.collector.decode_attributes import AttributeDecodeError, decode_key_values
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


def _lazy_traces_data_class() -> Any:
    # ExportTraceServiceRequest and TracesData are the same on the wire (field 1, ResourceSpans).
    return common.lazy_message_class(
        trace_pb2,
        [
            ("ResourceSpans", "resource"),
            ("ScopeSpans", "scope"),
            ("Span", "attributes"),
            ("Span", "status"),
            ("Span.Event", "attributes"),
            ("Span.Link", "attributes"),
        ],
        "TracesData",
    )


_LazyTracesData = _lazy_traces_data_class()

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
        return _decode(request, span_errors or {})
    except (ProtoDecodeError, AttributeDecodeError) as e:
        raise DecodeError(f"request is not a valid ExportTraceServiceRequest: {e}") from None


def _decode(request: Any, span_errors: dict[SpanPosition, str]) -> DecodeResult:
    spans, groups = common.gather(request.resource_spans, attrgetter("scope_spans"), attrgetter("spans"))
    n = len(spans)
    if n == 0:
        return DecodeResult(SpanBatch.empty())

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

    group_of_span, group_cols = common.group_columns(groups)

    start_u64 = np.fromiter(starts, np.uint64, n)
    end_u64 = np.fromiter(ends, np.uint64, n)
    columns = [
        pa.array(trace_ids, pa.binary()),
        pa.array(span_ids, pa.binary()),
        col.nullable_ids(parent_ids),
        col.strings(trace_states),
        col.uint32s(flags),
        pa.array(names, pa.string()),
        col.small_enums(kinds),
        pa.array(start_u64.view(np.int64)),
        # Wrapping uint64 subtraction, viewed as int64, is end minus start even when negative.
        pa.array((end_u64 - start_u64).view(np.int64)),
        col.small_enums(status_codes),
        col.strings(status_messages),
        *group_cols,
        attr_map,
        *promoted.values(),
        col.uint32s(dropped_attributes),
        col.events(
            event_cols, event_counts, event_attr_counts, keys.slice(n_span, n_event), values.slice(n_span, n_event)
        ),
        col.uint32s(dropped_events),
        col.links(
            link_cols, link_counts, link_attr_counts, keys.slice(n_span + n_event), values.slice(n_span + n_event)
        ),
        col.uint32s(dropped_links),
    ]
    table = pa.Table.from_arrays(columns, schema=SPAN_SCHEMA)

    common.add_positional_errors(span_errors, groups, problems)
    message = common.rejection_message(problems, groups, _PATH, ("span", "spans"))
    table, groups = common.drop_rejected(table, problems, groups, group_of_span)
    batch = SpanBatch(table, *common.side_tables(groups))
    return DecodeResult(batch, len(problems), message)


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
