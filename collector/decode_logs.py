"""Decode OTLP log export requests (protobuf or OTLP/JSON) into a :class:`LogBatch`.

The protobuf path mirrors :mod:`.decode_traces`: a private copy of the OTLP logs schema in which
record attributes, the resource and the scope are left as raw bytes, record fields read
column-wise, all attributes of a request decoded at once by :mod:`.decode_attributes`, and
resources and scopes decoded once per distinct serialized form (with the same rows and
fingerprints as spans, so both signals share them).

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
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from spanlake.collector import span_columns as col
from spanlake.collector.decode_attributes import AttributeDecodeError, decode_key_values
from spanlake.collector.decode_traces import DecodeError, _resource_row, _scope_row
from spanlake.collector.otlp_json import hex_ids_to_proto_json
from spanlake.log_model import LOG_SCHEMA, LogBatch, body_columns
from spanlake.model import encode_proto_any_value

__all__ = ["DecodeError", "LogDecodeResult", "RecordPosition", "decode_logs_json", "decode_logs_protobuf"]

#: Position of a record in a request: (resourceLogs index, scopeLogs index, logRecords index).
RecordPosition = tuple[int, int, int]


@dataclass
class LogDecodeResult:
    batch: LogBatch
    rejected: int = 0
    error_message: str = ""  # empty when nothing was rejected


def _lazy_logs_data_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto.FromString(logs_pb2.DESCRIPTOR.serialized_pb)
    messages = {m.name: m for m in fdp.message_type}
    for msg, name in (
        (messages["ResourceLogs"], "resource"),
        (messages["ScopeLogs"], "scope"),
        (messages["LogRecord"], "attributes"),
    ):
        (f,) = [f for f in msg.field if f.name == name]
        f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        f.ClearField("type_name")
    pool.AddSerializedFile(fdp.SerializeToString())
    # ExportLogsServiceRequest and LogsData are the same on the wire (field 1, ResourceLogs).
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("opentelemetry.proto.logs.v1.LogsData"))


_LazyLogsData = _lazy_logs_data_class()

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
_all_items = itemgetter(slice(None))
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


@dataclass(slots=True)
class _ScopeGroup:
    resource: Any  # decode_traces' resource row
    scope: Any
    position: tuple[int, int]
    num_records: int


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
    except (ProtoDecodeError, AttributeDecodeError) as e:
        raise DecodeError(f"request is not a valid ExportLogsServiceRequest: {e}") from None
    except UnicodeDecodeError as e:
        raise DecodeError(f"request is not a valid ExportLogsServiceRequest: {e}") from None


def _decode(request: Any, record_errors: dict[RecordPosition, str]) -> LogDecodeResult:
    records: list[Any] = []
    groups: list[_ScopeGroup] = []
    for r, rl in enumerate(request.resource_logs):
        resource = _resource_row(rl.resource, rl.schema_url)
        for s, sl in enumerate(rl.scope_logs):
            scope_records = sl.log_records
            if scope_records:
                records.extend(scope_records)
                groups.append(_ScopeGroup(resource, _scope_row(sl.scope, sl.schema_url), (r, s), len(scope_records)))
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
    for (r, s, p), message in record_errors.items():
        index = _index_of(groups, r, s, p)
        if index is not None:
            problems[index] = message

    flat_attrs = list(chain.from_iterable(map(_all_items, filter(None, attributes))))
    keys, values = decode_key_values(flat_attrs)
    attr_counts = np.fromiter(map(len, attributes), np.int64, n)
    body_text, body_value = zip(*(body_columns(encode_proto_any_value(b)) for b in bodies))

    group_sizes = [g.num_records for g in groups]
    group_index = pa.array(np.repeat(np.arange(len(groups)), group_sizes))

    def per_group(values: list[Any], type_: pa.DataType) -> pa.Array:
        return col.repeat_per_group(values, type_, group_sizes, group_index)

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
        pa.array(body_text, pa.string()),
        pa.array(body_value, pa.string()),
        col.map_array(attr_counts, keys, values),
        col.uint32s(dropped_attributes),
        col.uint32s(flags),
        _correlation_ids(trace_ids, _ZERO_TRACE_ID),
        _correlation_ids(span_ids, _ZERO_SPAN_ID),
        col.strings(event_names),
        per_group([g.resource.service_name for g in groups], pa.string()),
        per_group([g.resource.resource_id for g in groups], pa.uint64()),
        per_group([g.scope.scope_id for g in groups], pa.uint64()),
        per_group([g.scope.name for g in groups], pa.string()),
        per_group([g.scope.version for g in groups], pa.string()),
        pa.array(np.frombuffer(os.urandom(8 * n), np.uint64)),
    ]
    table = pa.Table.from_arrays(columns, schema=LOG_SCHEMA)

    message = ""
    if problems:
        message = _rejection_message(problems, groups)
        keep = np.ones(n, bool)
        keep[list(problems)] = False
        table = table.filter(pa.array(keep))
        group_of = np.repeat(np.arange(len(groups)), group_sizes)
        groups = [groups[i] for i in np.unique(group_of[keep]).tolist()]
    resources = list({g.resource.resource_id: g.resource for g in groups}.values())
    scopes = list({g.scope.scope_id: g.scope for g in groups}.values())
    batch = LogBatch(table, col.resource_table(resources), col.scope_table(scopes))
    return LogDecodeResult(batch, len(problems), message)


def _correlation_ids(values: list[bytes], zero: bytes) -> pa.Array:
    """Binary ids; empty and all-zero ones (not correlated) are NULL."""
    return pa.array([v if v and v != zero else None for v in values], pa.binary())


def _id_problem(field: str, value: bytes, size: int) -> str | None:
    if value and len(value) != size:
        return f"{field} is {len(value)} bytes, expected {size} or empty"
    return None


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
            _id_problem("traceId", tid, 16)
            or _id_problem("spanId", sid, 8)
            or (None if 0 <= sev <= 255 else f"severityNumber is {sev}, expected 0..255")
        )
        if problem:
            problems[i] = problem
    return problems


def _index_of(groups: list[_ScopeGroup], r: int, s: int, p: int) -> int | None:
    start = 0
    for g in groups:
        if g.position == (r, s):
            return start + p if 0 <= p < g.num_records else None
        start += g.num_records
    return None


def _rejection_message(problems: dict[int, str], groups: list[_ScopeGroup], limit: int = 5) -> str:
    starts = np.concatenate(([0], np.cumsum([g.num_records for g in groups]))).astype(int)
    parts = []
    for i in sorted(problems)[:limit]:
        g = int(np.searchsorted(starts, i, side="right")) - 1
        (r, s), p = groups[g].position, i - int(starts[g])
        parts.append(f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{p}].{problems[i]}")
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    noun = "log record" if len(problems) == 1 else "log records"
    return f"{len(problems)} {noun} rejected: " + "; ".join(parts) + more


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
