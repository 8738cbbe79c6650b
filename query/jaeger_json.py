"""Spans to the Jaeger UI JSON model (``/api/traces``, ``/api/transform``), as Jaeger v2 writes it.

Jaeger converts OTLP with the collector-contrib translator (``traces_to_jaegerproto.go``) and then
to UI JSON (``uimodel/converter/v1/json/from_domain.go``). This module does both steps at once:

* one process per distinct (service name, resource tags), keyed ``p1``, ``p2``... in order of
  first use; ``service.name`` becomes ``serviceName`` and the other resource attributes ``tags``;
* span tags in the translator's order: ``otel.scope.name``, ``otel.scope.version``, the span
  attributes, ``span.kind``, ``otel.status_code``, ``error``, ``otel.status_description``,
  ``w3c.tracestate``;
* references: the parent first as ``CHILD_OF``, then links as ``FOLLOWS_FROM`` (``CHILD_OF`` when the
  link's ``opentracing.ref_type`` is ``child_of``; a link to the parent only retypes the parent);
* events become logs whose first field is ``event`` (the event name);
* values: maps and arrays as Go-encoded JSON strings, bytes as base64 ``binary``, integers beyond
  +-(2^53 - 1) as decimal strings; times and durations in microseconds (truncated);
* ``flags`` is present (as 1) only for sampled spans; ``warnings`` are ``null`` when empty.

With ``sanitize`` (the default, for stored traces) Jaeger's write-path sanitisers are applied as
well: a resource without ``service.name`` gives ``missing-service-name``, an empty one
``empty-service-name``, an empty span name ``empty-span-name``. ``POST /api/transform`` passes
``sanitize=False`` and gets the translator's raw behaviour (``OTLPResourceNoServiceName`` for a
resource without attributes, an empty name otherwise).
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any, Mapping, Sequence

from spanlake.model import Resource, Span, decode_value, string_form

JS_MAX_SAFE_INTEGER = (1 << 53) - 1
NO_SERVICE_NAME = "OTLPResourceNoServiceName"
MISSING_SERVICE_NAME = "missing-service-name"
EMPTY_SERVICE_NAME = "empty-service-name"
EMPTY_SPAN_NAME = "empty-span-name"
_KIND_TAGS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_SAMPLED = 0x01

SpanWarnings = Mapping[int, Sequence[str]] | Sequence[Sequence[str]]


# --- ids and times -----------------------------------------------------------------------------


def jaeger_trace_id(trace_id: bytes) -> str:
    """Jaeger's ``TraceID.String()``: 16 hex digits when the high 64 bits are zero, else 32."""
    raw = trace_id.rjust(16, b"\0")[-16:]
    high, low = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")
    return f"{low:016x}" if high == 0 else f"{high:016x}{low:016x}"


def jaeger_span_id(span_id: bytes) -> str:
    value = int.from_bytes(span_id.rjust(8, b"\0")[-8:], "big")
    return f"{value:016x}"


def _micros(ns: int) -> int:
    return ns // 1000 if ns >= 0 else -(-ns // 1000)  # Go truncates toward zero


# --- values ------------------------------------------------------------------------------------


class _NotEncodable(Exception):
    pass


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
               "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_string(s: str) -> str:
    out = []
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _go_float(f: float) -> str:
    """A float64 as Go's encoding/json writes it (ES6 number formatting)."""
    if math.isnan(f) or math.isinf(f):
        raise _NotEncodable
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    a = abs(f)
    if a < 1e-6 or a >= 1e21:
        mantissa, _, exp = repr(f).partition("e")
        e = int(exp)
        return f"{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}".replace("e-0", "e-")
    text = format(Decimal(repr(f)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _go_json(v: Any) -> str:
    """JSON of a decoded attribute value the way pdata's ``Value.AsString()`` writes maps and slices."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, str):
        return _go_string(v)
    if isinstance(v, bytes):
        return '"' + base64.b64encode(v).decode("ascii") + '"'
    if isinstance(v, list):
        return "[" + ",".join(_go_json(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_go_string(k) + ":" + _go_json(v[k]) for k in sorted(v)) + "}"
    raise _NotEncodable


def jaeger_tag(key: str, enc: str) -> dict[str, Any]:
    """One ``{key, type, value}`` from an encoded attribute value."""
    tag, payload = enc[:1], enc[1:]
    if tag == "s":
        return {"key": key, "type": "string", "value": payload}
    if tag == "b":
        return {"key": key, "type": "bool", "value": payload == "true"}
    if tag == "i":
        n = int(payload)
        return {"key": key, "type": "int64", "value": n if -JS_MAX_SAFE_INTEGER <= n <= JS_MAX_SAFE_INTEGER else str(n)}
    if tag == "d":
        f = float(payload)
        if not math.isfinite(f):
            # Go refuses to encode these at all; OTLP/JSON's spelling keeps the trace readable.
            return {"key": key, "type": "float64", "value": "NaN" if f != f else ("Infinity" if f > 0 else "-Infinity")}
        return {"key": key, "type": "float64", "value": f}
    if tag == "y":
        return {"key": key, "type": "binary", "value": base64.b64encode(base64.b64decode(payload)).decode("ascii")}
    if tag in ("a", "k"):
        try:
            text = _go_json(decode_value(enc))
        except _NotEncodable:
            text = ""  # pdata's AsString yields "" when json.Marshal fails
        return {"key": key, "type": "string", "value": text}
    return {"key": key, "type": "string", "value": ""}


def _str_tag(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


# --- processes ---------------------------------------------------------------------------------


def _process(resource: Resource, sanitize: bool) -> dict[str, Any]:
    attrs = resource.attributes
    enc = attrs.get("service.name")
    if sanitize:
        # Matches Resource.service_name, so the trace agrees with the service list.
        name = MISSING_SERVICE_NAME if enc is None else (string_form(enc) or EMPTY_SERVICE_NAME)
    elif not attrs:
        name = NO_SERVICE_NAME
    else:
        name = enc[1:] if enc is not None and enc[:1] == "s" else ""
    tags = [jaeger_tag(k, v) for k, v in attrs.items() if k != "service.name"]
    return {"serviceName": name, "tags": tags}


def _process_key(process: dict[str, Any]) -> tuple[Any, ...]:
    return (process["serviceName"], *((t["key"], t["type"], t["value"]) for t in process["tags"]))


# --- spans -------------------------------------------------------------------------------------


def _span_tags(s: Span) -> list[dict[str, Any]]:
    tags = []
    if s.scope.name:
        tags.append(_str_tag("otel.scope.name", s.scope.name))
    if s.scope.version:
        tags.append(_str_tag("otel.scope.version", s.scope.version))
    tags.extend(jaeger_tag(k, v) for k, v in s.attributes.items())
    kind = _KIND_TAGS.get(s.kind)
    if kind:
        tags.append(_str_tag("span.kind", kind))
    if s.status_code == 2:
        tags.append(_str_tag("otel.status_code", "ERROR"))
        tags.append({"key": "error", "type": "bool", "value": True})
    elif s.status_code == 1:
        tags.append(_str_tag("otel.status_code", "OK"))
    if s.status_message:
        tags.append(_str_tag("otel.status_description", s.status_message))
    if s.trace_state:
        tags.append(_str_tag("w3c.tracestate", s.trace_state))
    return tags


def _references(s: Span, trace_id: str) -> list[dict[str, str]]:
    refs: list[dict[str, str]] = []
    parent = jaeger_span_id(s.parent_span_id) if s.parent_span_id and any(s.parent_span_id) else None
    if parent:
        refs.append({"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent})
    for link in s.links:
        enc = link.attributes.get("opentracing.ref_type")
        ref_type = "CHILD_OF" if enc == "schild_of" else "FOLLOWS_FROM"
        link_trace, link_span = jaeger_trace_id(link.trace_id), jaeger_span_id(link.span_id)
        if parent and link_trace == trace_id and link_span == parent:
            refs[0]["refType"] = ref_type
            continue
        refs.append({"refType": ref_type, "traceID": link_trace, "spanID": link_span})
    return refs


def _logs(s: Span) -> list[dict[str, Any]]:
    logs = []
    for e in s.events:
        fields = []
        if e.name and "event" not in e.attributes:
            fields.append(_str_tag("event", e.name))
        fields.extend(jaeger_tag(k, v) for k, v in e.attributes.items())
        logs.append({"timestamp": _micros(e.time_ns), "fields": fields})
    return logs


def _span_warnings(warnings: SpanWarnings | None, i: int) -> list[str] | None:
    if warnings is None:
        return None
    if isinstance(warnings, Mapping):
        w = warnings.get(i)
    else:
        w = warnings[i] if i < len(warnings) else None
    return list(w) if w else None


def trace_to_jaeger_ui(
    spans: Sequence[Span],
    warnings: SpanWarnings | None = None,
    trace_warnings: Sequence[str] | None = None,
    *,
    sanitize: bool = True,
) -> dict[str, Any]:
    """One trace in Jaeger UI JSON. ``warnings`` are per span: a dict by span index (as
    :class:`~spanlake.query.assemble.AssembledTrace` has them) or one list per span."""
    process_ids: dict[tuple[Any, ...], str] = {}
    processes: dict[str, dict[str, Any]] = {}
    by_resource: dict[int, str] = {}
    trace_id = jaeger_trace_id(spans[0].trace_id) if spans else ""
    out_spans = []
    for i, s in enumerate(spans):
        pid = by_resource.get(id(s.resource))
        if pid is None:
            process = _process(s.resource, sanitize)
            key = _process_key(process)
            pid = process_ids.get(key)
            if pid is None:
                pid = process_ids[key] = f"p{len(process_ids) + 1}"
                processes[pid] = process
            by_resource[id(s.resource)] = pid
        span_trace_id = jaeger_trace_id(s.trace_id)
        out: dict[str, Any] = {"traceID": span_trace_id, "spanID": jaeger_span_id(s.span_id)}
        if s.flags & _SAMPLED:
            out["flags"] = 1
        out["operationName"] = s.name or (EMPTY_SPAN_NAME if sanitize else "")
        out["references"] = _references(s, span_trace_id)
        out["startTime"] = _micros(s.start_ns)
        out["duration"] = _micros(max(0, s.duration_ns))
        out["tags"] = _span_tags(s)
        out["logs"] = _logs(s)
        out["processID"] = pid
        out["warnings"] = _span_warnings(warnings, i)
        out_spans.append(out)
    return {
        "traceID": trace_id,
        "spans": out_spans,
        # Go writes map keys sorted, so p10 comes before p2.
        "processes": {k: processes[k] for k in sorted(processes)},
        "warnings": list(trace_warnings) if trace_warnings else None,
    }


# --- envelope ----------------------------------------------------------------------------------


def jaeger_error(msg: str, code: int = 0, trace_id: str = "") -> dict[str, Any]:
    """One entry of the envelope's ``errors`` (``code`` and ``traceID`` are omitted when empty)."""
    err: dict[str, Any] = {}
    if code:
        err["code"] = code
    err["msg"] = msg
    if trace_id:
        err["traceID"] = trace_id
    return err


def jaeger_envelope(
    data: Any, total: int = 0, limit: int = 0, offset: int = 0, errors: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Jaeger's ``structuredResponse``: every field present, ``errors`` null when there are none."""
    errs = None
    if errors:
        errs = [jaeger_error(e.get("msg", ""), e.get("code") or 0, e.get("traceID") or "") for e in errors]
    return {"data": data, "total": total, "limit": limit, "offset": offset, "errors": errs}
