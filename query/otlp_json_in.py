"""OTLP/JSON (``ExportTraceServiceRequest`` / ``TracesData``) to read-model spans.

Used by ``POST /api/transform`` (jaeger-ui's OTLP file upload) and by tests. Follows the OTLP/JSON
rules: ids are hex strings, 64-bit integers may be strings or numbers, enums may be numbers or
their names, and field names may be lowerCamelCase or the proto's snake_case. One
:class:`~spanlake.model.Resource` (and :class:`~spanlake.model.Scope`) object is shared by the
spans of each ``resourceSpans`` (``scopeSpans``) entry.
"""

from __future__ import annotations

import json
from typing import Any

from spanlake.model import (
    SPAN_KIND_NUMBERS,
    Event,
    Link,
    Resource,
    Scope,
    Span,
    encode_json_any_value,
)

_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class OTLPJSONError(ValueError):
    """The document is not valid OTLP/JSON trace data."""


def _get(obj: dict[str, Any], camel: str, default: Any = None) -> Any:
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake, default)


def _int(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise OTLPJSONError(f"{what}: not an integer: {value!r}") from None


def _hex_id(value: Any, size: int, what: str) -> bytes:
    if not value:
        return b""
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise OTLPJSONError(f"{what}: not a hex id: {value!r}") from None
    if len(raw) != size:
        raise OTLPJSONError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw


def _attrs(items: Any, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in items or []:
        try:
            out[kv.get("key", "")] = encode_json_any_value(kv.get("value") or {})
        except (ValueError, TypeError, AttributeError) as e:
            raise OTLPJSONError(f"{what}: bad attribute {kv!r}: {e}") from None
    return out


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        if value not in names:
            raise OTLPJSONError(f"{what}: unknown value {value!r}")
        return names[value]
    return _int(value, what)


_KIND_NAMES = {"SPAN_KIND_" + name.upper(): num for name, num in SPAN_KIND_NUMBERS.items()}


def spans_from_otlp_json(doc: dict[str, Any] | str | bytes) -> list[Span]:
    """All spans of an OTLP/JSON document, in document order."""
    if isinstance(doc, (str, bytes)):
        try:
            doc = json.loads(doc)
        except ValueError as e:
            raise OTLPJSONError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise OTLPJSONError("expected a JSON object with resourceSpans")
    out: list[Span] = []
    for rs in _get(doc, "resourceSpans") or []:
        res_json = _get(rs, "resource") or {}
        resource = Resource(
            _attrs(_get(res_json, "attributes"), "resource"),
            _int(_get(res_json, "droppedAttributesCount"), "droppedAttributesCount"),
            _get(rs, "schemaUrl") or "",
        )
        for ss in _get(rs, "scopeSpans") or []:
            sc = _get(ss, "scope") or {}
            scope = Scope(
                sc.get("name") or "",
                sc.get("version") or "",
                _attrs(sc.get("attributes"), "scope"),
                _int(_get(sc, "droppedAttributesCount"), "droppedAttributesCount"),
                _get(ss, "schemaUrl") or "",
            )
            for sp in ss.get("spans") or []:
                out.append(_span(sp, resource, scope))
    return out


def _span(sp: dict[str, Any], resource: Resource, scope: Scope) -> Span:
    start = _int(_get(sp, "startTimeUnixNano"), "startTimeUnixNano")
    end = _int(_get(sp, "endTimeUnixNano"), "endTimeUnixNano")
    status = sp.get("status") or {}
    return Span(
        trace_id=_hex_id(_get(sp, "traceId"), 16, "traceId"),
        span_id=_hex_id(_get(sp, "spanId"), 8, "spanId"),
        parent_span_id=_hex_id(_get(sp, "parentSpanId"), 8, "parentSpanId"),
        name=sp.get("name") or "",
        kind=_enum(sp.get("kind"), _KIND_NAMES, "kind"),
        start_ns=start,
        duration_ns=end - start,
        status_code=_enum(status.get("code"), _STATUS_NAMES, "status.code"),
        status_message=status.get("message") or "",
        trace_state=_get(sp, "traceState") or "",
        flags=_int(sp.get("flags"), "flags"),
        attributes=_attrs(sp.get("attributes"), "span"),
        dropped_attributes_count=_int(_get(sp, "droppedAttributesCount"), "droppedAttributesCount"),
        events=[
            Event(
                _int(_get(e, "timeUnixNano"), "timeUnixNano"),
                e.get("name") or "",
                _attrs(e.get("attributes"), "event"),
                _int(_get(e, "droppedAttributesCount"), "droppedAttributesCount"),
            )
            for e in sp.get("events") or []
        ],
        dropped_events_count=_int(_get(sp, "droppedEventsCount"), "droppedEventsCount"),
        links=[
            Link(
                _hex_id(_get(link, "traceId"), 16, "link traceId"),
                _hex_id(_get(link, "spanId"), 8, "link spanId"),
                _get(link, "traceState") or "",
                _int(link.get("flags"), "link flags"),
                _attrs(link.get("attributes"), "link"),
                _int(_get(link, "droppedAttributesCount"), "droppedAttributesCount"),
            )
            for link in sp.get("links") or []
        ],
        dropped_links_count=_int(_get(sp, "droppedLinksCount"), "droppedLinksCount"),
        resource=resource,
        scope=scope,
    )


#: Alias under the name the HTTP layer uses.
otlp_json_to_spans = spans_from_otlp_json
