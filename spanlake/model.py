"""The shared span model: Arrow schemas of a span batch, attribute value encoding, read model.

Everything that crosses a component boundary is defined here:

* the collector decodes OTLP into a :class:`SpanBatch` (three Arrow tables whose schemas are
  :data:`SPAN_SCHEMA`, :data:`RESOURCE_SCHEMA` and :data:`SCOPE_SCHEMA`);
* storage writes those tables as they are and reads them back;
* the query side turns stored rows into :class:`Span` objects with :func:`spans_from_arrow`.

Attribute values are stored as *encoded strings*: a one-character type tag followed by the
value, so that a ``MAP(VARCHAR, VARCHAR)`` column keeps every OTLP ``AnyValue`` type without
loss, compresses well (dictionary encoding) and can still be searched by string form.

====  ==========================================  =====================
tag   OTLP type                                   payload
====  ==========================================  =====================
``s`` string_value                                the string
``b`` bool_value                                  ``true`` / ``false``
``i`` int_value                                   decimal integer
``d`` double_value                                ``repr(float)``
``y`` bytes_value                                 base64
``a`` array_value                                 OTLP/JSON of the AnyValue
``k`` kvlist_value                                OTLP/JSON of the AnyValue
``n`` empty AnyValue (no value set)               empty
====  ==========================================  =====================
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# ---------------------------------------------------------------------------------------------
# Encoded attribute values
# ---------------------------------------------------------------------------------------------

ATTR_MAP = pa.map_(pa.string(), pa.string())

#: Attribute keys stored in their own column instead of the attribute map (the hot ones that
#: searches and span metrics use). Column name -> attribute key. The column holds the encoded
#: value, exactly as the map would; readers merge them back into ``Span.attributes``.
PROMOTED_ATTRIBUTES: dict[str, str] = {
    "attr_http_request_method": "http.request.method",
    "attr_http_method": "http.method",
    "attr_http_route": "http.route",
    "attr_http_response_status_code": "http.response.status_code",
    "attr_http_status_code": "http.status_code",
    "attr_db_system": "db.system",
    "attr_peer_service": "peer.service",
    "attr_rpc_service": "rpc.service",
    "attr_error_type": "error.type",
}
PROMOTED_KEYS: dict[str, str] = {key: col for col, key in PROMOTED_ATTRIBUTES.items()}


def encode_string(value: str) -> str:
    return "s" + value


def encode_bool(value: bool) -> str:
    return "btrue" if value else "bfalse"


def encode_int(value: int) -> str:
    return "i" + str(int(value))


def encode_double(value: float) -> str:
    return "d" + repr(float(value))


def encode_bytes(value: bytes) -> str:
    return "y" + base64.b64encode(value).decode("ascii")


def encode_json_any_value(any_value: dict[str, Any]) -> str:
    """Encode an OTLP/JSON AnyValue dict (``{"stringValue": ...}`` etc.) canonically."""
    if not any_value:
        return "n"
    ((kind, v),) = any_value.items()
    if kind == "stringValue":
        return encode_string(v)
    if kind == "boolValue":
        return encode_bool(bool(v))
    if kind == "intValue":
        return encode_int(int(v))
    if kind == "doubleValue":
        return encode_double(float(v))
    if kind == "bytesValue":
        return "y" + v
    if kind == "arrayValue":
        return "a" + json.dumps(_canonical_json(any_value), separators=(",", ":"))
    if kind == "kvlistValue":
        return "k" + json.dumps(_canonical_json(any_value), separators=(",", ":"))
    raise ValueError(f"unknown AnyValue field {kind!r}")


def _canonical_json(any_value: dict[str, Any]) -> dict[str, Any]:
    """Normalise an OTLP/JSON AnyValue so that proto and JSON input encode identically."""
    if not any_value:
        return {}
    ((kind, v),) = any_value.items()
    if kind == "intValue":
        return {"intValue": str(int(v))}
    if kind == "doubleValue":
        return {"doubleValue": float(v)}
    if kind == "boolValue":
        return {"boolValue": bool(v)}
    if kind == "arrayValue":
        return {"arrayValue": {"values": [_canonical_json(x) for x in (v or {}).get("values", [])]}}
    if kind == "kvlistValue":
        return {
            "kvlistValue": {
                "values": [
                    {"key": kv.get("key", ""), "value": _canonical_json(kv.get("value") or {})}
                    for kv in (v or {}).get("values", [])
                ]
            }
        }
    return {kind: v}


def encode_proto_any_value(av: Any) -> str:
    """Encode an ``opentelemetry.proto.common.v1.AnyValue`` message."""
    kind = av.WhichOneof("value")
    if kind == "string_value":
        return "s" + av.string_value
    if kind == "int_value":
        return "i" + str(av.int_value)
    if kind == "bool_value":
        return "btrue" if av.bool_value else "bfalse"
    if kind == "double_value":
        return "d" + repr(av.double_value)
    if kind == "bytes_value":
        return encode_bytes(av.bytes_value)
    if kind is None:
        return "n"
    return encode_json_any_value(proto_any_value_to_json(av))


def encode_proto_any_value_with_form(av: Any) -> tuple[str, str]:
    """(``encode_proto_any_value(av)``, ``string_form`` of it) in one pass: for structured
    values (log bodies) without building the OTLP/JSON document, encoding it and parsing it
    back."""
    kind = av.WhichOneof("value")
    if kind not in ("array_value", "kvlist_value"):
        enc = encode_proto_any_value(av)
        return enc, string_form(enc)
    tag = "a" if kind == "array_value" else "k"
    try:
        doc, form = _json_pair(av)
    except _RepeatedKey:  # the string form is a JSON object: let a dict decide which wins
        enc = tag + json.dumps(proto_any_value_to_json(av), separators=(",", ":"))
        return enc, string_form(enc)
    return tag + doc, form


class _RepeatedKey(Exception):
    pass


def _json_float(v: float) -> str:
    # As json.dumps writes floats (it allows NaN and the infinities).
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    return float.__repr__(v)


def _json_pair(av: Any) -> tuple[str, str]:
    """(compact OTLP/JSON of ``av``, compact JSON of its Python value), as ``json.dumps`` of
    :func:`proto_any_value_to_json` and of :func:`_json_to_python` of it would write them."""
    kind = av.WhichOneof("value")
    if kind == "string_value":
        text = _json_string(av.string_value)
        return '{"stringValue":' + text + "}", text
    if kind == "int_value":
        text = str(av.int_value)
        return '{"intValue":"' + text + '"}', text
    if kind == "bool_value":
        text = "true" if av.bool_value else "false"
        return '{"boolValue":' + text + "}", text
    if kind == "double_value":
        text = _json_float(av.double_value)
        return '{"doubleValue":' + text + "}", text
    if kind == "bytes_value":
        text = '"' + base64.b64encode(av.bytes_value).decode("ascii") + '"'
        return '{"bytesValue":' + text + "}", text
    if kind == "array_value":
        pairs = [_json_pair(x) for x in av.array_value.values]
        return (
            '{"arrayValue":{"values":[' + ",".join(d for d, _ in pairs) + "]}}",
            "[" + ",".join(f for _, f in pairs) + "]",
        )
    if kind == "kvlist_value":
        entries = av.kvlist_value.values
        keys = [_json_string(kv.key) for kv in entries]
        if len(set(keys)) < len(keys):
            raise _RepeatedKey
        pairs = [_json_pair(kv.value) for kv in entries]
        return (
            '{"kvlistValue":{"values":['
            + ",".join('{"key":' + k + ',"value":' + d + "}" for k, (d, _) in zip(keys, pairs))
            + "]}}",
            "{" + ",".join(k + ":" + f for k, (_, f) in zip(keys, pairs)) + "}",
        )
    return "{}", "null"


def proto_any_value_to_json(av: Any) -> dict[str, Any]:
    """OTLP/JSON form of a protobuf AnyValue (hex is not involved: AnyValue holds no ids)."""
    kind = av.WhichOneof("value")
    if kind == "string_value":
        return {"stringValue": av.string_value}
    if kind == "int_value":
        return {"intValue": str(av.int_value)}
    if kind == "bool_value":
        return {"boolValue": av.bool_value}
    if kind == "double_value":
        return {"doubleValue": av.double_value}
    if kind == "bytes_value":
        return {"bytesValue": base64.b64encode(av.bytes_value).decode("ascii")}
    if kind == "array_value":
        return {"arrayValue": {"values": [proto_any_value_to_json(x) for x in av.array_value.values]}}
    if kind == "kvlist_value":
        return {
            "kvlistValue": {
                "values": [
                    {"key": kv.key, "value": proto_any_value_to_json(kv.value)} for kv in av.kvlist_value.values
                ]
            }
        }
    return {}


def decode_to_json(enc: str) -> dict[str, Any]:
    """OTLP/JSON AnyValue dict of an encoded value."""
    tag, payload = enc[:1], enc[1:]
    if tag == "s":
        return {"stringValue": payload}
    if tag == "i":
        return {"intValue": payload}
    if tag == "b":
        return {"boolValue": payload == "true"}
    if tag == "d":
        return {"doubleValue": _json_double(float(payload))}
    if tag == "y":
        return {"bytesValue": payload}
    if tag in ("a", "k"):
        return json.loads(payload)
    if tag == "n":
        return {}
    raise ValueError(f"bad encoded attribute value {enc[:20]!r}")


def _json_double(v: float) -> float | str:
    # OTLP/JSON (proto3 JSON) writes non-finite doubles as strings.
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def decode_value(enc: str) -> Any:
    """Python value of an encoded attribute (bytes for bytes, list/dict for arrays/kvlists)."""
    tag, payload = enc[:1], enc[1:]
    if tag == "s":
        return payload
    if tag == "i":
        return int(payload)
    if tag == "b":
        return payload == "true"
    if tag == "d":
        return float(payload)
    if tag == "y":
        return base64.b64decode(payload)
    if tag in ("a", "k"):
        return _json_to_python(json.loads(payload))
    return None


def _json_to_python(av: dict[str, Any]) -> Any:
    if not av:
        return None
    ((kind, v),) = av.items()
    if kind == "arrayValue":
        return [_json_to_python(x) for x in (v or {}).get("values", [])]
    if kind == "kvlistValue":
        return {kv["key"]: _json_to_python(kv.get("value") or {}) for kv in (v or {}).get("values", [])}
    if kind == "intValue":
        return int(v)
    if kind == "bytesValue":
        return base64.b64decode(v)
    return v


def value_type(enc: str) -> str:
    """One of string, bool, int, double, bytes, array, kvlist, empty."""
    return {
        "s": "string",
        "b": "bool",
        "i": "int",
        "d": "double",
        "y": "bytes",
        "a": "array",
        "k": "kvlist",
        "n": "empty",
    }[enc[:1]]


def string_form(enc: str) -> str:
    """The string a tag search compares with (Jaeger matches tags by their string form)."""
    tag, payload = enc[:1], enc[1:]
    if tag in ("s", "b", "i", "y"):
        return payload
    if tag == "d":
        v = float(payload)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else payload
    if tag in ("a", "k"):
        return json.dumps(_json_to_python(json.loads(payload)), separators=(",", ":"), default=_b64)
    return ""


def string_form_candidates(text: str) -> list[str]:
    """Encoded values whose string form equals ``text`` (for pushing a tag filter into SQL)."""
    out = ["s" + text]
    if text in ("true", "false"):
        out.append("b" + text)
    try:
        i = int(text)
        if str(i) == text:
            out.append("i" + text)
    except ValueError:
        pass
    try:
        f = float(text)
        out.append("d" + repr(f))
    except ValueError:
        pass
    out.append("y" + text)
    return out


def _b64(o: Any) -> str:
    if isinstance(o, bytes):
        return base64.b64encode(o).decode("ascii")
    raise TypeError(type(o))


# ---------------------------------------------------------------------------------------------
# Fingerprints of resources and scopes (stored once, referenced from every span)
# ---------------------------------------------------------------------------------------------


def fingerprint(parts: Iterable[str]) -> int:
    """64-bit id of a resource or scope: the same content from proto or JSON gives the same id."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "little")


def resource_fingerprint(attributes: list[tuple[str, str]], dropped: int, schema_url: str) -> int:
    flat: list[str] = [schema_url, str(dropped)]
    for k, v in sorted(attributes):
        flat.append(k)
        flat.append(v)
    return fingerprint(flat)


def scope_fingerprint(
    name: str, version: str, attributes: list[tuple[str, str]], dropped: int, schema_url: str
) -> int:
    flat: list[str] = [name, version, schema_url, str(dropped)]
    for k, v in sorted(attributes):
        flat.append(k)
        flat.append(v)
    return fingerprint(flat)


# ---------------------------------------------------------------------------------------------
# Arrow schemas of a span batch
# ---------------------------------------------------------------------------------------------

EVENT_TYPE = pa.struct(
    [
        ("time_ns", pa.int64()),
        ("name", pa.string()),
        ("attributes", ATTR_MAP),
        ("dropped_attributes_count", pa.uint32()),
    ]
)
LINK_TYPE = pa.struct(
    [
        ("trace_id", pa.binary()),
        ("span_id", pa.binary()),
        ("trace_state", pa.string()),
        ("flags", pa.uint32()),
        ("attributes", ATTR_MAP),
        ("dropped_attributes_count", pa.uint32()),
    ]
)

#: One row per span. ``parent_span_id`` is null for a root span. Times are integer nanoseconds
#: since the Unix epoch; ``duration_ns`` is end minus start (may be negative if the client
#: sent it so; stored as sent).
SPAN_SCHEMA = pa.schema(
    [
        ("trace_id", pa.binary()),  # 16 bytes
        ("span_id", pa.binary()),  # 8 bytes
        ("parent_span_id", pa.binary()),  # 8 bytes or null
        ("trace_state", pa.string()),
        ("flags", pa.uint32()),
        ("name", pa.string()),
        ("kind", pa.uint8()),  # OTLP SpanKind number 0..5
        ("start_ns", pa.int64()),
        ("duration_ns", pa.int64()),
        ("status_code", pa.uint8()),  # 0 unset, 1 ok, 2 error
        ("status_message", pa.string()),
        ("service_name", pa.string()),  # copied from the resource for search
        ("resource_id", pa.uint64()),
        ("scope_id", pa.uint64()),
        ("scope_name", pa.string()),  # copied from the scope for search
        ("scope_version", pa.string()),
        ("attributes", ATTR_MAP),  # everything but the promoted keys
        *[(col, pa.string()) for col in PROMOTED_ATTRIBUTES],
        ("dropped_attributes_count", pa.uint32()),
        ("events", pa.list_(EVENT_TYPE)),
        ("dropped_events_count", pa.uint32()),
        ("links", pa.list_(LINK_TYPE)),
        ("dropped_links_count", pa.uint32()),
    ]
)

RESOURCE_SCHEMA = pa.schema(
    [
        ("resource_id", pa.uint64()),
        ("service_name", pa.string()),
        ("attributes", ATTR_MAP),
        ("dropped_attributes_count", pa.uint32()),
        ("schema_url", pa.string()),  # ResourceSpans.schema_url
    ]
)

SCOPE_SCHEMA = pa.schema(
    [
        ("scope_id", pa.uint64()),
        ("name", pa.string()),
        ("version", pa.string()),
        ("attributes", ATTR_MAP),
        ("dropped_attributes_count", pa.uint32()),
        ("schema_url", pa.string()),  # ScopeSpans.schema_url
    ]
)

#: Service name used when a resource carries none (Jaeger's sanitiser uses the same words).
MISSING_SERVICE_NAME = "missing-service-name"


@dataclass
class SpanBatch:
    """Spans decoded from one or more export requests, ready for the store.

    ``resources`` and ``scopes`` hold one row per distinct id referenced by ``spans`` (they may
    repeat rows the store already has; the store de-duplicates by id).
    """

    spans: pa.Table
    resources: pa.Table
    scopes: pa.Table

    @property
    def num_spans(self) -> int:
        return self.spans.num_rows

    @staticmethod
    def empty() -> "SpanBatch":
        return SpanBatch(SPAN_SCHEMA.empty_table(), RESOURCE_SCHEMA.empty_table(), SCOPE_SCHEMA.empty_table())

    @staticmethod
    def concat(batches: list["SpanBatch"]) -> "SpanBatch":
        if len(batches) == 1:
            return batches[0]
        return SpanBatch(
            pa.concat_tables([b.spans for b in batches]),
            pa.concat_tables([b.resources for b in batches]),
            pa.concat_tables([b.scopes for b in batches]),
        )


# ---------------------------------------------------------------------------------------------
# Read model
# ---------------------------------------------------------------------------------------------

SPAN_KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
SPAN_KIND_NUMBERS = {v: k for k, v in SPAN_KIND_NAMES.items()}
STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}


@dataclass
class Resource:
    attributes: dict[str, str] = field(default_factory=dict)  # encoded values
    dropped_attributes_count: int = 0
    schema_url: str = ""

    @property
    def service_name(self) -> str:
        enc = self.attributes.get("service.name")
        return string_form(enc) if enc else MISSING_SERVICE_NAME


@dataclass
class Scope:
    name: str = ""
    version: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    schema_url: str = ""


@dataclass
class Event:
    time_ns: int
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass
class Link:
    trace_id: bytes
    span_id: bytes
    trace_state: str = ""
    flags: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass
class Span:
    """One stored span with its resource and scope. Attribute values are encoded strings."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes  # b"" for a root span
    name: str
    kind: int
    start_ns: int
    duration_ns: int
    status_code: int = 0
    status_message: str = ""
    trace_state: str = ""
    flags: int = 0
    attributes: dict[str, str] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    events: list[Event] = field(default_factory=list)
    dropped_events_count: int = 0
    links: list[Link] = field(default_factory=list)
    dropped_links_count: int = 0
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)

    @property
    def end_ns(self) -> int:
        return self.start_ns + self.duration_ns

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def is_error(self) -> bool:
        return self.status_code == 2


def _attr_dict(pairs: Any) -> dict[str, str]:
    if not pairs:
        return {}
    return dict(pairs)


def _column(table: pa.Table, name: str, default: Any) -> list[Any]:
    """A column as a Python list with nulls (and a missing column) replaced by ``default``."""
    if name not in table.column_names:
        return [default] * table.num_rows
    col = table.column(name)
    if col.null_count:
        if default is None:
            return col.to_pylist()
        col = pc.fill_null(col, pa.scalar(default, col.type))
    return col.to_pylist()


def _flat(chunked: pa.ChunkedArray | pa.Array) -> pa.Array:
    return chunked.combine_chunks() if isinstance(chunked, pa.ChunkedArray) else chunked


def _list_parts(arr: pa.Array, child: pa.Array) -> tuple[pa.Array, list[int], list[int]]:
    """For a list (or map) array and its unsliced child (``values``, ``keys``...): the part of
    the child it uses, and each entry's [start, end) in that part; a null entry is empty."""
    offsets = arr.offsets.to_numpy(zero_copy_only=False)
    first = int(offsets[0])
    offsets = offsets - first
    starts, ends = offsets[:-1], offsets[1:]
    if arr.null_count:
        ends = np.where(arr.is_null().to_numpy(zero_copy_only=False), starts, ends)
    return child.slice(first, int(offsets[-1])), starts.tolist(), ends.tolist()


def _attr_dicts(arr: pa.Array) -> list[dict[str, str]]:
    """One dict per entry of a ``MAP(string, string)`` array (null and empty maps give {})."""
    if len(arr) == 0:
        return []
    keys, starts, ends = _list_parts(arr, arr.keys)
    if len(keys) == 0:
        return [{} for _ in starts]
    keys = keys.to_pylist()
    values = arr.items.slice(arr.offsets[0].as_py(), len(keys)).to_pylist()
    return [dict(zip(keys[a:b], values[a:b])) if b > a else {} for a, b in zip(starts, ends)]


def _nested(arr: pa.Array, build: Any) -> list[list[Any]]:
    """Per entry of a list-of-struct array, the list of ``build(structs)``'s items."""
    if len(arr) == 0:
        return []
    structs, starts, ends = _list_parts(arr, arr.values)
    if len(structs) == 0:
        return [[] for _ in starts]
    items = build(structs)
    return [items[a:b] if b > a else [] for a, b in zip(starts, ends)]


def _field(structs: pa.StructArray, name: str, default: Any) -> list[Any]:
    col = structs.field(name)
    if col.null_count and default is not None:
        col = pc.fill_null(col, pa.scalar(default, col.type))
    return col.to_pylist()


def _events(structs: pa.StructArray) -> list[Event]:
    return [
        Event(t, name, attrs, dropped)
        for t, name, attrs, dropped in zip(
            _field(structs, "time_ns", None), _field(structs, "name", ""),
            _attr_dicts(structs.field("attributes")), _field(structs, "dropped_attributes_count", 0),
        )
    ]


def _links(structs: pa.StructArray) -> list[Link]:
    return [
        Link(tid, sid, state, flags, attrs, dropped)
        for tid, sid, state, flags, attrs, dropped in zip(
            _field(structs, "trace_id", None), _field(structs, "span_id", None),
            _field(structs, "trace_state", ""), _field(structs, "flags", 0),
            _attr_dicts(structs.field("attributes")), _field(structs, "dropped_attributes_count", 0),
        )
    ]


#: From this many rows on, :func:`spans_from_arrow` works column by column (measured crossover:
#: about 100 rows).
COLUMNWISE_MIN_ROWS = 100


def _spans_by_row(spans: pa.Table, res_by_id: dict[int, Resource], scope_by_id: dict[int, Scope]) -> list[Span]:
    out: list[Span] = []
    for row in spans.to_pylist():
        attrs = _attr_dict(row["attributes"])
        for col, key in PROMOTED_ATTRIBUTES.items():
            v = row.get(col)
            if v is not None:
                attrs[key] = v
        out.append(
            Span(
                trace_id=row["trace_id"],
                span_id=row["span_id"],
                parent_span_id=row["parent_span_id"] or b"",
                name=row["name"] or "",
                kind=row["kind"] or 0,
                start_ns=row["start_ns"],
                duration_ns=row["duration_ns"],
                status_code=row["status_code"] or 0,
                status_message=row["status_message"] or "",
                trace_state=row["trace_state"] or "",
                flags=row["flags"] or 0,
                attributes=attrs,
                dropped_attributes_count=row["dropped_attributes_count"] or 0,
                events=[
                    Event(e["time_ns"], e["name"] or "", _attr_dict(e["attributes"]), e["dropped_attributes_count"] or 0)
                    for e in (row["events"] or [])
                ],
                dropped_events_count=row["dropped_events_count"] or 0,
                links=[
                    Link(
                        l["trace_id"],
                        l["span_id"],
                        l["trace_state"] or "",
                        l["flags"] or 0,
                        _attr_dict(l["attributes"]),
                        l["dropped_attributes_count"] or 0,
                    )
                    for l in (row["links"] or [])
                ],
                dropped_links_count=row["dropped_links_count"] or 0,
                resource=res_by_id.get(row["resource_id"]) or Resource(),
                scope=scope_by_id.get(row["scope_id"]) or Scope(row["scope_name"] or "", row["scope_version"] or ""),
            )
        )
    return out


def spans_from_arrow(spans: pa.Table, resources: pa.Table, scopes: pa.Table) -> list[Span]:
    """Build read-model spans from stored rows; unknown resource or scope ids give empty ones.

    Works column by column (one ``to_pylist`` per column, maps rebuilt from their flattened
    keys and values): a 100,000-span trace is built several times faster than row by row. That
    costs a fixed half millisecond, though, so small tables (an ordinary trace) go row by row.
    """
    res_by_id: dict[int, Resource] = {}
    for r in resources.to_pylist():
        res_by_id[r["resource_id"]] = Resource(
            _attr_dict(r["attributes"]), r["dropped_attributes_count"] or 0, r["schema_url"] or ""
        )
    scope_by_id: dict[int, Scope] = {}
    for s in scopes.to_pylist():
        scope_by_id[s["scope_id"]] = Scope(
            s["name"] or "",
            s["version"] or "",
            _attr_dict(s["attributes"]),
            s["dropped_attributes_count"] or 0,
            s["schema_url"] or "",
        )
    n = spans.num_rows
    if n == 0:
        return []
    if n < COLUMNWISE_MIN_ROWS:
        return _spans_by_row(spans, res_by_id, scope_by_id)
    attrs = _attr_dicts(_flat(spans.column("attributes")))
    for col, key in PROMOTED_ATTRIBUTES.items():
        if col not in spans.column_names:
            continue
        c = spans.column(col)
        if c.null_count == n:
            continue
        for a, v in zip(attrs, c.to_pylist()):
            if v is not None:
                a[key] = v
    events = _nested(_flat(spans.column("events")), _events)
    links = _nested(_flat(spans.column("links")), _links)

    # Spans of one resource (or scope) id share one object, as they did row by row.
    # (A span of an unknown resource or scope id gets its own empty one.)
    resource_list = [res_by_id.get(rid) or Resource() for rid in _column(spans, "resource_id", None)]
    scope_list: list[Scope] = []
    scope_names = _column(spans, "scope_name", "")
    scope_versions = _column(spans, "scope_version", "")
    for sid, name, version in zip(_column(spans, "scope_id", None), scope_names, scope_versions):
        sc = scope_by_id.get(sid)
        scope_list.append(sc if sc is not None else Scope(name, version))

    # Positional arguments, in the order the fields of Span are declared.
    return [Span(*values) for values in zip(
        _column(spans, "trace_id", None),
        _column(spans, "span_id", None),
        _column(spans, "parent_span_id", b""),
        _column(spans, "name", ""),
        _column(spans, "kind", 0),
        _column(spans, "start_ns", None),
        _column(spans, "duration_ns", None),
        _column(spans, "status_code", 0),
        _column(spans, "status_message", ""),
        _column(spans, "trace_state", ""),
        _column(spans, "flags", 0),
        attrs,
        _column(spans, "dropped_attributes_count", 0),
        events,
        _column(spans, "dropped_events_count", 0),
        links,
        _column(spans, "dropped_links_count", 0),
        resource_list,
        scope_list,
    )]
