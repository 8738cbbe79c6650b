"""Decode OTLP log export requests (protobuf or OTLP/JSON) into a :class:`LogBatch`.

The protobuf path works as :mod:`.decode_traces` does, with the walk, resources, scopes and
partial-success message of :mod:`.decode_common`: a lazy copy of the OTLP logs schema in which
record attributes, bodies, the resource and the scope stay raw bytes; record fields read
column-wise; all attributes of a request decoded at once by :mod:`.decode_attributes`; string
bodies cut out of the request's bytes by numpy (:func:`_body_columns`), so no Python object is
built per attribute or per body; resources and scopes decoded once per distinct serialized
form, with the same rows and fingerprints as spans, so both signals share them.

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
from spanlake.collector import span_columns as col
from spanlake.collector.decode_attributes import AttributeDecodeError, decode_key_values
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
_LazyLogsData = common.lazy_message_class(
    logs_pb2,
    [("ResourceLogs", "resource"), ("ScopeLogs", "scope"), ("LogRecord", "body"), ("LogRecord", "attributes")],
    "LogsData",
)

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


# ---------------------------------------------------------------------------------------------
# Protobuf
# ---------------------------------------------------------------------------------------------


def decode_logs_protobuf(data: bytes, record_errors: dict[RecordPosition, str] | None = None) -> LogDecodeResult:
    """Decode a serialized ``ExportLogsServiceRequest`` (or ``LogsData``).

    ``record_errors`` rejects records found bad earlier (the JSON path's ids that were not hex).
    """
    try:
        request = _LazyLogsData.FromString(bytes(data))
        return _decode(request, record_errors or {})
    except (ProtoDecodeError, AttributeDecodeError, UnicodeDecodeError) as e:
        raise DecodeError(f"request is not a valid ExportLogsServiceRequest: {e}") from None


def _decode(request: Any, record_errors: dict[RecordPosition, str]) -> LogDecodeResult:
    records, groups = common.gather(request.resource_logs, attrgetter("scope_logs"), attrgetter("log_records"))
    n = len(records)
    if n == 0:
        return LogDecodeResult(LogBatch.empty())

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
    ) = [list(map(get, records)) for get in _RECORD_FIELDS]

    problems = _check_records(trace_ids, span_ids, severities)
    common.add_positional_errors(record_errors, groups, problems)

    keys, values = decode_key_values(flatten(attributes))
    attr_counts = np.fromiter(map(len, attributes), np.int64, n)
    body_text, body_value = _body_columns(bodies)
    group_of, group_cols = common.group_columns(groups)

    # Time falls back to the observed time, which falls back to the time of receipt.
    now = np.uint64(time.time_ns())
    observed_u64 = np.fromiter(observed, np.uint64, n)
    observed_u64[observed_u64 == 0] = now
    time_u64 = np.fromiter(times, np.uint64, n)
    time_u64 = np.where(time_u64 == 0, observed_u64, time_u64)

    columns = [
        pa.array(time_u64.view(np.int64)),
        pa.array(observed_u64.view(np.int64)),
        col.small_enums(severities),
        col.strings(severity_texts),
        body_text,
        body_value,
        col.map_array(attr_counts, keys, values),
        col.uint32s(dropped_attributes),
        col.uint32s(flags),
        _correlation_ids(trace_ids, _ZERO_TRACE_ID),
        _correlation_ids(span_ids, _ZERO_SPAN_ID),
        col.strings(event_names),
        *group_cols,
        pa.array(np.frombuffer(os.urandom(8 * n), np.uint64)),
    ]
    table = pa.Table.from_arrays(columns, schema=LOG_SCHEMA)

    message = common.rejection_message(problems, groups, _PATH, _NOUNS)
    table, groups = common.drop_rejected(table, problems, groups, group_of)
    batch = LogBatch(table, *common.side_tables(groups))
    return LogDecodeResult(batch, len(problems), message)


def _body_columns(bodies: list[bytes]) -> tuple[pa.Array, pa.Array]:
    """(``body``, ``body_value``) columns of serialized ``AnyValue`` bodies, as
    :func:`~spanlake.log_model.body_columns` gives them one by one (and does, for the few that
    are not cut out): a string body is its text and no value; any other body (or none) is its
    string form and its encoded value.

    String bodies, nearly all of them, are cut out of the request's bytes by numpy and copied by
    one Arrow ``take`` (``0x0A <length> <UTF-8>``, lengths up to two varint bytes, as
    :mod:`.decode_attributes` does for attribute values); the others are parsed one by one.
    """
    n = len(bodies)
    packed = pa.array(bodies, pa.binary())
    bounds = np.frombuffer(packed.buffers()[1], np.int32, n + 1).astype(np.int64)
    total = int(bounds[-1])
    # Three bytes of padding: the header reads below never run past the buffer.
    src = np.zeros(total + 3, np.uint8)
    if total:
        src[:total] = np.frombuffer(packed.buffers()[2], np.uint8, total)
    starts, ends = bounds[:-1], bounds[1:]
    b0 = src[starts + 1].astype(np.int64)
    b1 = src[starts + 2].astype(np.int64)
    two = b0 >= 0x80
    length = np.where(two, (b0 & 0x7F) | (b1 << 7), b0)
    text_start = starts + np.where(two, 3, 2)
    is_string = (ends > starts) & (src[starts] == _STRING_TAG) & ~(two & (b1 >= 0x80)) & (text_start + length == ends)
    # Pieces [header, text] per body; bodies that are not strings get an empty text piece.
    cuts = np.empty((n, 2), np.int64)
    cuts[:, 0] = starts
    cuts[:, 1] = np.where(is_string, text_start, ends)
    offsets = np.append(cuts.ravel(), total).astype(np.int32)
    pieces = pa.StringArray.from_buffers(2 * n, pa.py_buffer(offsets), pa.py_buffer(src))
    text = pieces.take(pa.array(np.arange(1, 2 * n, 2)))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid as e:
        raise DecodeError(f"request is not a valid ExportLogsServiceRequest: body is not valid UTF-8: {e}") from None
    value = pa.nulls(n, pa.string())
    others = np.flatnonzero(~is_string)
    if len(others):
        # body_columns(encoded) of each: a string body (one cut out above had an unusual
        # header) is its text and no value; any other is its string form and its encoding.
        pairs = [encode_proto_any_value_with_form(AnyValue.FromString(bodies[i])) for i in others.tolist()]
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
