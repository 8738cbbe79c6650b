"""OTLP/JSON trace requests: parse them into protobuf messages, then decode as protobuf.

OTLP/JSON is the proto3 JSON mapping of the OTLP messages with two differences the OTLP
specification makes: trace and span ids are hex strings (not base64), and enums may be sent
as integers. Receivers must accept lowerCamelCase and the original snake_case field names,
64-bit integers as strings or numbers, enum values as integers or names, and must ignore
unknown fields. ``google.protobuf.json_format`` does most of that but knows nothing of hex
ids, reports errors without the element's position and needs about 160 us per span; the
trace messages are therefore built here by small table-driven converters.

An id that is not hex rejects its span only (OTLP partial success), like a protobuf id of
the wrong length; anything else malformed (bad JSON, a wrong type, an integer out of range)
rejects the request with a :class:`DecodeError` naming the field, e.g.
``resourceSpans[0].scopeSpans[0].spans[2].startTimeUnixNano: not an integer``.

:func:`hex_ids_to_proto_json` is the id conversion alone, for signals decoded with
``json_format`` (logs): it rewrites hex ids into the base64 form ``json_format`` expects.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from spanlake.collector.decode_traces import DecodeError, DecodeResult, SpanPosition, decode_request_bytes

__all__ = [
    "ID_FIELDS",
    "INVALID_ID",
    "ParsedTraces",
    "decode_traces_json",
    "hex_ids_to_proto_json",
    "parse_hex_id",
    "parse_traces_json",
    "parse_traces_json_detailed",
]

#: JSON names of the id fields, in both spellings the OTLP/JSON receivers accept.
ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})

#: Stands in for an id that is not hex: one byte is never a valid id length, so the protobuf
#: decoder rejects the span even when the caller does not pass on the precise message.
INVALID_ID = b"\x00"


class _Problem(Exception):
    """A malformed value; the path to it is filled in while the error unwinds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = ""

    def within(self, step: str) -> "_Problem":
        self.path = step + ("" if not self.path or self.path.startswith("[") else ".") + self.path
        return self

    def text(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class _BadId(_Problem):
    """An id that is not hex: rejects its span, not the request."""


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


def parse_hex_id(value: Any) -> bytes:
    """Bytes of a hex id string (either case); raises ValueError if it is not hex."""
    if not isinstance(value, str):
        raise TypeError("not a string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = None
    if raw is None or 2 * len(raw) != len(value):  # fromhex skips whitespace; ids have none
        raise ValueError(f"{value[:40]!r} is not a hex string")
    return raw


def _hex_id(value: Any) -> bytes:
    try:
        return parse_hex_id(value)
    except TypeError as e:
        raise _Problem(str(e)) from None
    except ValueError as e:
        raise _BadId(str(e)) from None


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _Problem("not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            raise _Problem("not an integer") from None
    else:
        raise _Problem("not an integer")
    if not low <= number <= high:
        raise _Problem(f"{number} is out of range")
    return number


def _uint64(value: Any) -> int:
    return _integer(value, 0, 2**64 - 1)


def _int64(value: Any) -> int:
    return _integer(value, -(2**63), 2**63 - 1)


def _uint32(value: Any) -> int:
    return _integer(value, 0, 2**32 - 1)


def _enum(names: dict[str, int]) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, str) and value in names:
            return names[value]
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            raise _Problem(f"unknown enum value {value[:60]!r}")
        return _integer(value, -(2**31), 2**31 - 1)

    return convert


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("not a string")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem("not a boolean")
    return value


_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _double(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        if value in _SPECIAL_DOUBLES:
            return _SPECIAL_DOUBLES[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise _Problem("not a number")


def _base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise _Problem("not a base64 string")
    try:
        # proto3 JSON accepts the standard and the URL-safe alphabet, padded or not.
        text = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Problem("not a base64 string") from None


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


@dataclass
class _Fields:
    """JSON key (both spellings) -> (protobuf field name, converter) of one message type."""

    by_key: dict[str, tuple[str, Callable[..., Any]]] = field(default_factory=dict)

    @staticmethod
    def of(**converters: Callable[..., Any]) -> "_Fields":
        fields = _Fields()
        for name, convert in converters.items():
            fields.by_key[name] = fields.by_key[_camel(name)] = (name, convert)
        return fields


def _message(cls: type, fields: _Fields, value: Any, bad_ids: list[_Problem] | None = None) -> Any:
    """Build ``cls`` from a JSON object; unknown keys and nulls are ignored.

    With ``bad_ids`` given, an id that is not hex is listed there (with its path) and replaced
    by :data:`INVALID_ID` instead of failing the whole message.
    """
    if not isinstance(value, dict):
        raise _Problem("not an object")
    kwargs = {}
    for key, item in value.items():
        spec = fields.by_key.get(key)
        if spec is None or item is None:
            continue
        name, convert = spec
        try:
            if convert in _HOLDS_IDS and bad_ids is not None:
                mark = len(bad_ids)
                kwargs[name] = convert(item, bad_ids)
                for problem in bad_ids[mark:]:
                    problem.within(key)
            else:
                kwargs[name] = convert(item)
        except _BadId as e:
            if bad_ids is None:
                raise e.within(key) from None
            bad_ids.append(e.within(key))
            kwargs[name] = INVALID_ID
        except _Problem as e:
            raise e.within(key) from None
    return cls(**kwargs)


def _list(convert: Callable[[Any, Any], Any], value: Any, bad_ids: list[_Problem] | None = None) -> list[Any]:
    """Convert a JSON array item by item (``convert(item, bad_ids)``)."""
    if not isinstance(value, list):
        raise _Problem("not an array")
    out = []
    for i, item in enumerate(value):
        mark = len(bad_ids) if bad_ids is not None else 0
        try:
            out.append(convert(item, bad_ids))
        except _Problem as e:
            raise e.within(f"[{i}]") from None
        if bad_ids is not None:
            for problem in bad_ids[mark:]:
                problem.within(f"[{i}]")
    return out


def _any_value(value: Any, _: Any = None) -> AnyValue:
    return _message(AnyValue, _ANY_VALUE, value)


def _array_value(value: Any) -> ArrayValue:
    return _message(ArrayValue, _ARRAY_VALUE, value)


def _kvlist_value(value: Any) -> KeyValueList:
    return _message(KeyValueList, _KEY_VALUE_LIST, value)


def _key_value(value: Any, _: Any = None) -> KeyValue:
    # Shortcut for the usual {"key": k, "value": {"stringValue": v}}; the rest goes the long way.
    if type(value) is dict and len(value) == 2:
        key, any_value = value.get("key"), value.get("value")
        if type(key) is str and type(any_value) is dict and len(any_value) == 1:
            string = any_value.get("stringValue")
            if type(string) is str:
                return KeyValue(key=key, value={"string_value": string})
    return _message(KeyValue, _KEY_VALUE, value)


def _any_values(value: Any) -> list[AnyValue]:
    return _list(_any_value, value)


def _key_values(value: Any) -> list[KeyValue]:
    return _list(_key_value, value)


def _event(value: Any, _: Any = None) -> Span.Event:
    return _message(Span.Event, _EVENT, value)


def _events(value: Any) -> list[Span.Event]:
    return _list(_event, value)


def _link(value: Any, bad_ids: list[_Problem] | None = None) -> Span.Link:
    return _message(Span.Link, _LINK, value, bad_ids)


def _links(value: Any, bad_ids: list[_Problem] | None = None) -> list[Span.Link]:
    return _list(_link, value, bad_ids)


def _status(value: Any) -> Status:
    return _message(Status, _STATUS, value)


def _resource(value: Any) -> Resource:
    return _message(Resource, _RESOURCE, value)


def _scope(value: Any) -> InstrumentationScope:
    return _message(InstrumentationScope, _SCOPE, value)


_ANY_VALUE = _Fields.of(
    string_value=_string,
    bool_value=_bool,
    int_value=_int64,
    double_value=_double,
    bytes_value=_base64,
    array_value=_array_value,
    kvlist_value=_kvlist_value,
)
_ARRAY_VALUE = _Fields.of(values=_any_values)
_KEY_VALUE_LIST = _Fields.of(values=_key_values)
_KEY_VALUE = _Fields.of(key=_string, value=_any_value)
_RESOURCE = _Fields.of(attributes=_key_values, dropped_attributes_count=_uint32)
_SCOPE = _Fields.of(name=_string, version=_string, attributes=_key_values, dropped_attributes_count=_uint32)
_STATUS = _Fields.of(message=_string, code=_enum(dict(Status.StatusCode.items())))
_EVENT = _Fields.of(time_unix_nano=_uint64, name=_string, attributes=_key_values, dropped_attributes_count=_uint32)
_LINK = _Fields.of(
    trace_id=_hex_id,
    span_id=_hex_id,
    trace_state=_string,
    attributes=_key_values,
    dropped_attributes_count=_uint32,
    flags=_uint32,
)
_SPAN = _Fields.of(
    trace_id=_hex_id,
    span_id=_hex_id,
    trace_state=_string,
    parent_span_id=_hex_id,
    flags=_uint32,
    name=_string,
    kind=_enum(dict(Span.SpanKind.items())),
    start_time_unix_nano=_uint64,
    end_time_unix_nano=_uint64,
    attributes=_key_values,
    dropped_attributes_count=_uint32,
    events=_events,
    dropped_events_count=_uint32,
    links=_links,
    dropped_links_count=_uint32,
    status=_status,
)
#: Converters of fields below a span that can hold ids: they take the bad-id list along.
_HOLDS_IDS = {_links}


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass
class ParsedTraces:
    request: ExportTraceServiceRequest
    #: Spans whose ids were not hex -> what was wrong, e.g. ``traceId: 'xyz' is not a hex string``.
    span_errors: dict[SpanPosition, str]


def _load(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DecodeError(f"request is not valid JSON: {e}") from None


def _items(obj: dict[str, Any], camel: str, snake: str, path: str) -> list[Any]:
    value = obj.get(camel, obj.get(snake))
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{path}{camel}: not an array")
    return value


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"{path}: not an object")
    return value


def _scalar(obj: dict[str, Any], camel: str, snake: str, convert: Callable[[Any], Any], path: str) -> Any:
    value = obj.get(camel, obj.get(snake))
    if value is None:
        return None
    try:
        return convert(value)
    except _Problem as e:
        raise DecodeError(e.within(f"{path}{camel}").text()) from None


def parse_traces_json_detailed(data: bytes | str) -> ParsedTraces:
    """Parse an OTLP/JSON trace request; bad hex ids are listed per span, not raised."""
    doc = _object(_load(data), "request")
    request = ExportTraceServiceRequest()
    span_errors: dict[SpanPosition, str] = {}
    for r, rs_json in enumerate(_items(doc, "resourceSpans", "resource_spans", "")):
        rs_path = f"resourceSpans[{r}]"
        rs_json = _object(rs_json, rs_path)
        rs = ResourceSpans(schema_url=_scalar(rs_json, "schemaUrl", "schema_url", _string, rs_path + "."))
        resource = _scalar(rs_json, "resource", "resource", _resource, rs_path + ".")
        if resource is not None:
            rs.resource.CopyFrom(resource)
        for s, ss_json in enumerate(_items(rs_json, "scopeSpans", "scope_spans", rs_path + ".")):
            ss_path = f"{rs_path}.scopeSpans[{s}]"
            ss_json = _object(ss_json, ss_path)
            scope = _scalar(ss_json, "scope", "scope", _scope, ss_path + ".")
            spans = []
            for p, span_json in enumerate(_items(ss_json, "spans", "spans", ss_path + ".")):
                bad_ids: list[_Problem] = []
                try:
                    spans.append(_message(Span, _SPAN, span_json, bad_ids))
                except _Problem as e:
                    raise DecodeError(e.within(f"{ss_path}.spans[{p}]").text()) from None
                if bad_ids:
                    span_errors[(r, s, p)] = bad_ids[0].text()
            rs.scope_spans.append(
                ScopeSpans(
                    scope=scope,
                    spans=spans,
                    schema_url=_scalar(ss_json, "schemaUrl", "schema_url", _string, ss_path + "."),
                )
            )
        request.resource_spans.append(rs)
    return ParsedTraces(request, span_errors)


def parse_traces_json(data: bytes | str) -> ExportTraceServiceRequest:
    """The ExportTraceServiceRequest of an OTLP/JSON body.

    A span id that is not hex is replaced by :data:`INVALID_ID`, so decoding the message
    rejects that span alone; :func:`decode_traces_json` also says which id was not hex.
    """
    return parse_traces_json_detailed(data).request


def decode_traces_json(data: bytes | str) -> DecodeResult:
    """Decode an OTLP/JSON trace request into a batch (the JSON twin of the protobuf decoder)."""
    parsed = parse_traces_json_detailed(data)
    return decode_request_bytes(parsed.request.SerializeToString(), parsed.span_errors)


# ---------------------------------------------------------------------------------------------
# Hex ids for json_format (logs)
# ---------------------------------------------------------------------------------------------

#: Subtrees that hold user data (attribute keys and values), never ids: not walked.
_OPAQUE = frozenset({"attributes", "body", "resource", "scope", "value", "values"})


def hex_ids_to_proto_json(node: Any, id_fields: Iterable[str] = ID_FIELDS, path: str = "") -> list[tuple[str, str]]:
    """Rewrite hex ids in an OTLP/JSON document, in place, to proto3 JSON's base64.

    Afterwards ``json_format.ParseDict`` reads the document. Returns ``(path, problem)`` for
    every id that is not hex; such an id is replaced by :data:`INVALID_ID` so that the
    record's own validation rejects it. Works for any signal (traces, logs): the id fields
    are found by name wherever they are, e.g. ``resourceLogs[0].scopeLogs[0].logRecords[3].traceId``.
    """
    names = id_fields if isinstance(id_fields, (set, frozenset)) else frozenset(id_fields)
    problems: list[tuple[str, str]] = []
    _walk_ids(node, names, path, problems)
    return problems


def _walk_ids(node: Any, names: frozenset[str], path: str, problems: list[tuple[str, str]]) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, (dict, list)):
                _walk_ids(item, names, f"{path}[{i}]", problems)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}" if path else key
        if key in names and isinstance(value, str):
            try:
                raw = parse_hex_id(value)
            except ValueError as e:
                problems.append((where, str(e)))
                raw = INVALID_ID
            node[key] = base64.b64encode(raw).decode("ascii")
        elif key not in _OPAQUE and isinstance(value, (dict, list)):
            _walk_ids(value, names, where, problems)
