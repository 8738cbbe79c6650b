"""Decode OTLP log export requests (protobuf or OTLP/JSON) into a :class:`LogBatch`.

The protobuf path shares the request walk, resources, scopes and partial-success message of
:mod:`.decode_common` with :mod:`.decode_traces`: a lazy copy of the OTLP logs schema in which
the resource, the scope and every log record stay raw bytes. The records of a request are then
read column-wise in one numpy walk over their bytes (:class:`~.wire.FieldWalk`,
:func:`_walked_columns`): times, severities and flags gathered as arrays; strings, ids and
string bodies cut out of the buffer by one Arrow ``take`` each; attributes decoded where they
lie by :func:`~.decode_attributes.decode_key_values_at`; so no Python object is built per
record field, attribute or body. Records in an encoding the walk does not expect (fields out
of order, repeated or unknown, long varints) are parsed one by one by the official classes
instead (:func:`_parsed_columns`), with the same result. Resources and scopes are decoded once
per distinct serialized form, with the same rows and fingerprints as spans, so both signals
share them.

OTLP/JSON goes through ``json_format`` after :func:`~.otlp_json.hex_ids_to_proto_json` has
turned the hex ids into the base64 ``json_format`` expects, then through the protobuf path.

Each record is checked on its own: a trace id must be empty or 16 bytes, a span id empty or 8
bytes, a severity number 0..255. A bad record is rejected with a message naming its field,
e.g. ``resourceLogs[0].scopeLogs[1].logRecords[4].traceId is 5 bytes, expected 16 or empty``,
and the others are kept (OTLP partial success). All-zero ids mean "not correlated" (the log
data model) and are stored as NULL. A request that cannot be parsed raises :class:`DecodeError`.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1 import logs_pb2

from spanlake.collector import decode_common as common
from spanlake.collector import wire
from spanlake.collector import span_columns as col
from spanlake.collector.decode_attributes import AttributeDecodeError, decode_key_values, decode_key_values_at
from spanlake.collector.decode_common import DecodeError, flatten, id_problem
from spanlake.collector.otlp_json import hex_ids_to_proto_json
from spanlake.log_model import LOG_SCHEMA, LogBatch
from spanlake.model import encode_proto_any_value_with_form

__all__ = ["DecodeError", "LogDecodeResult", "RecordPosition", "decode_logs_json", "decode_logs_protobuf"]

#: Position of a record in a request: (resourceLogs index, scopeLogs index, logRecords index).
RecordPosition = tuple[int, int, int]


@dataclass
class LogDecodeResult:
    batch: LogBatch
    rejected: int = 0
    error_message: str = ""  # empty when nothing was rejected


# ExportLogsServiceRequest and LogsData are the same on the wire (field 1, ResourceLogs).
# Records stay raw bytes, read column-wise by :func:`_walked_columns`; the one-by-one path
# parses them with the LogRecord class of a copy in which bodies and attributes stay bytes.
_LazyLogsData = common.lazy_message_class(
    logs_pb2, [("ResourceLogs", "resource"), ("ScopeLogs", "scope"), ("ScopeLogs", "log_records")], "LogsData"
)
_LazyLogRecord = common.lazy_message_class(logs_pb2, [("LogRecord", "body"), ("LogRecord", "attributes")], "LogRecord")

_RECORD_FIELDS = [
    attrgetter(name)
    for name in (
        "time_unix_nano",
        "observed_time_unix_nano",
        "severity_number",
        "severity_text",
        "body",
        "attributes",
        "dropped_attributes_count",
        "flags",
        "trace_id",
        "span_id",
        "event_name",
    )
]
_PATH = ("resourceLogs", "scopeLogs", "logRecords")
_NOUNS = ("log record", "log records")
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
_STRING_TAG = 0x0A  # AnyValue.string_value (field 1, length-delimited)
_NO_BODY = encode_proto_any_value_with_form(AnyValue())

# LogRecord tags (field number << 3 | wire type), in field-number order.
_TIME = 0x09  # 1 time_unix_nano, fixed64
_SEVERITY_NUMBER = 0x10  # 2, varint
_SEVERITY_TEXT = 0x1A  # 3, string
_BODY = 0x2A  # 5, AnyValue
_ATTRIBUTE = 0x32  # 6, repeated KeyValue
_DROPPED = 0x38  # 7 dropped_attributes_count, varint
_FLAGS = 0x45  # 8, fixed32
_TRACE_ID = 0x4A  # 9, bytes
_SPAN_ID = 0x52  # 10, bytes
_OBSERVED = 0x59  # 11 observed_time_unix_nano, fixed64
_EVENT_NAME = 0x62  # 12, string


@dataclass
class _RecordColumns:
    """The record fields of a request as columns (times still raw), and the records found bad."""

    time: np.ndarray  # uint64, 0 when absent
    observed: np.ndarray
    severity_number: pa.Array
    severity_text: pa.Array
    body: pa.Array
    body_value: pa.Array
    attributes: pa.Array
    dropped_attributes_count: pa.Array
    flags: pa.Array
    trace_id: pa.Array
    span_id: pa.Array
    event_name: pa.Array
    problems: dict[int, str]


# ---------------------------------------------------------------------------------------------
# Protobuf
# ---------------------------------------------------------------------------------------------


def decode_logs_protobuf(data: bytes, record_errors: dict[RecordPosition, str] | None = None) -> LogDecodeResult:
    """Decode a serialized ``ExportLogsServiceRequest`` (or ``LogsData``).

    ``record_errors`` rejects records found bad earlier (the JSON path's ids that were not hex).
    """
    try:
        request = _LazyLogsData.FromString(bytes(data))
        records, groups = common.gather(request.resource_logs, attrgetter("scope_logs"), attrgetter("log_records"))
        if not records:
            return LogDecodeResult(LogBatch.empty())
        try:
            columns = _walked_columns(*wire.packed(records))
        except wire.Unusual:
            columns = _parsed_columns(records)
        return _result(columns, groups, record_errors or {})
    except (ProtoDecodeError, AttributeDecodeError, UnicodeDecodeError) as e:
        raise DecodeError(f"request is not a valid ExportLogsServiceRequest: {e}") from None


def _walked_columns(data: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> _RecordColumns:
    """The columns of the records at ``[starts[i], ends[i])`` of ``data``, read in one
    :class:`~.wire.FieldWalk`. Raises :class:`~.wire.Unusual` for records it does not handle
    (then :func:`_parsed_columns` decides), including strings that are not UTF-8."""
    src = np.frombuffer(data, np.uint8)
    walk = wire.FieldWalk(src, starts, ends)
    times = walk.fixed(_TIME, 8)
    severities = walk.small_varint(_SEVERITY_NUMBER)
    severity_texts = walk.length_delimited(_SEVERITY_TEXT)
    bodies = walk.length_delimited(_BODY)
    attr_rows, attr_starts, attr_ends = walk.repeated(_ATTRIBUTE)
    dropped = walk.small_varint(_DROPPED)
    flags = walk.fixed(_FLAGS, 4)
    trace_ids = walk.length_delimited(_TRACE_ID)
    span_ids = walk.length_delimited(_SPAN_ID)
    observed = walk.fixed(_OBSERVED, 8)
    event_names = walk.length_delimited(_EVENT_NAME)
    walk.finish()

    n = len(starts)
    problems: dict[int, str] = {}
    trace_id = _walked_ids(data, walk.rd, *trace_ids, "traceId", 16, problems)
    span_id = _walked_ids(data, walk.rd, *span_ids, "spanId", 8, problems)
    keys, values = decode_key_values_at(data, attr_starts, attr_ends)
    body_text, body_value = _body_columns_at(data, *bodies)
    return _RecordColumns(
        time=times,
        observed=observed,
        severity_number=pa.array(severities),
        severity_text=wire.strings(data, *severity_texts),
        body=body_text,
        body_value=body_value,
        attributes=col.map_array(np.bincount(attr_rows, minlength=n), keys, values),
        dropped_attributes_count=pa.array(dropped.astype(np.uint32)),
        flags=pa.array(flags),
        trace_id=trace_id,
        span_id=span_id,
        event_name=wire.strings(data, *event_names),
        problems=problems,
    )


def _walked_ids(
    data: pa.Buffer, rd: wire.Reader, starts: np.ndarray, ends: np.ndarray, field: str, size: int,
    problems: dict[int, str],
) -> pa.Array:
    """A correlation id column of ``size``-byte ids (empty and all-zero ids are NULL, see
    :func:`_correlation_ids`); adds the records whose id has a wrong length to ``problems`` (a
    record's first problem wins)."""
    length = ends - starts
    absent = length == 0
    bad = np.flatnonzero(~absent & (length != size))
    for i in bad.tolist():
        problems.setdefault(i, id_problem(field, rd.buf[starts[i] : ends[i]].tobytes(), size, optional=True))
    full = np.flatnonzero(length == size)
    null = absent
    if len(full):
        null = absent.copy()
        null[full] = wire.all_zero(rd, starts[full], size)
    return wire.pieces(data, starts, ends, pa.binary(), null if null.any() else None)


def _parsed_columns(records: list[bytes]) -> _RecordColumns:
    """The columns of serialized records, parsed one by one by the official classes."""
    parsed = [_LazyLogRecord.FromString(r) for r in records]
    n = len(parsed)
    (
        times,
        observed,
        severities,
        severity_texts,
        bodies,
        attributes,
        dropped_attributes,
        flags,
        trace_ids,
        span_ids,
        event_names,
    ) = [list(map(get, parsed)) for get in _RECORD_FIELDS]
    keys, values = decode_key_values(flatten(attributes))
    body_text, body_value = _body_columns_at(*wire.packed(bodies))
    return _RecordColumns(
        time=np.fromiter(times, np.uint64, n),
        observed=np.fromiter(observed, np.uint64, n),
        severity_number=col.small_enums(severities),
        severity_text=col.strings(severity_texts),
        body=body_text,
        body_value=body_value,
        attributes=col.map_array(np.fromiter(map(len, attributes), np.int64, n), keys, values),
        dropped_attributes_count=col.uint32s(dropped_attributes),
        flags=col.uint32s(flags),
        trace_id=_correlation_ids(trace_ids, _ZERO_TRACE_ID),
        span_id=_correlation_ids(span_ids, _ZERO_SPAN_ID),
        event_name=col.strings(event_names),
        problems=_check_records(trace_ids, span_ids, severities),
    )


def _result(
    columns: _RecordColumns, groups: list[common.ScopeGroup], record_errors: dict[RecordPosition, str]
) -> LogDecodeResult:
    problems = columns.problems
    common.add_positional_errors(record_errors, groups, problems)
    group_of, group_cols = common.group_columns(groups)
    n = len(group_of)

    # Time falls back to the observed time, which falls back to the time of receipt.
    observed = columns.observed
    observed[observed == 0] = np.uint64(time.time_ns())
    times = np.where(columns.time == 0, observed, columns.time)

    table = pa.Table.from_arrays(
        [
            pa.array(times.view(np.int64)),
            pa.array(observed.view(np.int64)),
            columns.severity_number,
            columns.severity_text,
            columns.body,
            columns.body_value,
            columns.attributes,
            columns.dropped_attributes_count,
            columns.flags,
            columns.trace_id,
            columns.span_id,
            columns.event_name,
            *group_cols,
            pa.array(np.frombuffer(os.urandom(8 * n), np.uint64)),
        ],
        schema=LOG_SCHEMA,
    )
    message = common.rejection_message(problems, groups, _PATH, _NOUNS)
    table, groups = common.drop_rejected(table, problems, groups, group_of)
    return LogDecodeResult(LogBatch(table, *common.side_tables(groups)), len(problems), message)


def _body_columns_at(data: pa.Buffer, starts: np.ndarray, ends: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(``body``, ``body_value``) columns of the serialized ``AnyValue`` bodies at
    ``[starts[i], ends[i])`` of ``data``, as :func:`~spanlake.log_model.body_columns` gives them
    one by one (and does, for the few that are not cut out): a string body is its text and no
    value; any other body (or none) is its string form and its encoded value.

    String bodies, nearly all of them, are cut out of the buffer by numpy and copied by one
    Arrow ``take`` (``0x0A <length> <UTF-8>``, lengths up to two varint bytes, as
    :mod:`.decode_attributes` does for attribute values); the others are parsed one by one.
    """
    n = len(starts)
    rd = wire.Reader(np.frombuffer(data, np.uint8))
    b0 = rd.byte(starts + 1).astype(np.int64)
    b1 = rd.byte(starts + 2).astype(np.int64)
    two = b0 >= 0x80
    length = np.where(two, (b0 & 0x7F) | (b1 << 7), b0)
    text_start = starts + np.where(two, 3, 2)
    is_string = (ends > starts) & (rd.byte(starts) == _STRING_TAG) & ~(two & (b1 >= 0x80)) & (text_start + length == ends)
    text = wire.pieces(data, np.where(is_string, text_start, ends), ends)
    try:
        text.validate(full=True)
    except pa.ArrowInvalid as e:
        raise DecodeError(f"request is not a valid ExportLogsServiceRequest: body is not valid UTF-8: {e}") from None
    value = pa.nulls(n, pa.string())
    others = np.flatnonzero(~is_string)
    if len(others):
        # body_columns(encoded) of each: a string body (one cut out above had an unusual
        # header) is its text and no value; any other is its string form and its encoding.
        pairs = [
            encode_proto_any_value_with_form(AnyValue.FromString(rd.buf[s:e].tobytes())) if e > s else _NO_BODY
            for s, e in zip(starts[others].tolist(), ends[others].tolist())
        ]
        forms = [form for _, form in pairs]
        values = [None if enc[:1] == "s" else enc for enc, _ in pairs]
        mask = pa.array(~is_string)
        text = pc.replace_with_mask(text, mask, pa.array(forms, pa.string()))
        value = pc.replace_with_mask(value, mask, pa.array(values, pa.string()))
    return text, value


def _correlation_ids(values: list[bytes], zero: bytes) -> pa.Array:
    """Binary ids; empty and all-zero ones (not correlated) are NULL."""
    distinct = set(values)
    if b"" not in distinct and zero not in distinct:
        return pa.array(values, pa.binary())
    return pa.array([v if v and v != zero else None for v in values], pa.binary())


def _check_records(trace_ids: list[bytes], span_ids: list[bytes], severities: list[int]) -> dict[int, str]:
    """Record index -> what is wrong with it. Whole-column checks first; a loop only on failure."""
    if (
        set(map(len, trace_ids)) <= {0, 16}
        and set(map(len, span_ids)) <= {0, 8}
        and 0 <= min(severities) <= max(severities) <= 255
    ):
        return {}
    problems: dict[int, str] = {}
    for i, (tid, sid, sev) in enumerate(zip(trace_ids, span_ids, severities)):
        problem = (
            id_problem("traceId", tid, 16, optional=True, allow_zero=True)
            or id_problem("spanId", sid, 8, optional=True, allow_zero=True)
            or (None if 0 <= sev <= 255 else f"severityNumber is {sev}, expected 0..255")
        )
        if problem:
            problems[i] = problem
    return problems


# ---------------------------------------------------------------------------------------------
# OTLP/JSON
# ---------------------------------------------------------------------------------------------

_RECORD_PATH = re.compile(
    r"(?:resourceLogs|resource_logs)\[(\d+)\]\.(?:scopeLogs|scope_logs)\[(\d+)\]\."
    r"(?:logRecords|log_records)\[(\d+)\]\.(\w+)"
)


def decode_logs_json(data: bytes | str) -> LogDecodeResult:
    """Decode an OTLP/JSON logs request: hex ids, names in either spelling, unknown fields
    ignored. An id that is not hex rejects its record only."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DecodeError(f"request is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError("request: not an object")
    record_errors: dict[RecordPosition, str] = {}
    for path, problem in hex_ids_to_proto_json(doc):
        m = _RECORD_PATH.fullmatch(path)
        if m is None:  # an id field somewhere else: let json_format judge it
            continue
        r, s, p, field = m.groups()
        record_errors.setdefault((int(r), int(s), int(p)), f"{field}: {problem}")
    try:
        request = json_format.ParseDict(doc, ExportLogsServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise DecodeError(f"request is not a valid OTLP/JSON logs request: {e}") from None
    return decode_logs_protobuf(request.SerializeToString(), record_errors)
