"""Encode read-model spans back into OTLP: protobuf ``TracesData`` and OTLP/JSON.

The inverse of the collector's decoder: spans are grouped by resource, then by scope (equal
content is one group, in order of first appearance) and every field the span model keeps
is written back: resource and scope attributes, dropped counts and schema URLs, trace state,
flags, events, links and status.

The JSON form follows OTLP/JSON as Jaeger's api_v3 writes it (``apiv3_snapshots_GetTrace``):
hex ids, lowerCamelCase names, 64-bit integers as strings, enums as integers, fields with
their default value left out, except ``resource``, ``scope`` and ``status``, which are always
present (``{}`` when empty).
"""

from __future__ import annotations

import base64
import math
from typing import Any, Iterable

from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Status, TracesData
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from spanlake.model import Event, Link, Resource, Scope, Span, decode_to_json

__all__ = ["spans_to_otlp_json", "spans_to_traces_data", "group_spans"]

_MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# Grouping
# ---------------------------------------------------------------------------------------------


def _resource_key(r: Resource) -> tuple[Any, ...]:
    return (tuple(sorted(r.attributes.items())), r.dropped_attributes_count, r.schema_url)


def _scope_key(s: Scope) -> tuple[Any, ...]:
    return (s.name, s.version, tuple(sorted(s.attributes.items())), s.dropped_attributes_count, s.schema_url)


def group_spans(spans: Iterable[Span]) -> list[tuple[Resource, list[tuple[Scope, list[Span]]]]]:
    """Spans grouped by resource then scope (by content), in order of first appearance."""
    resources: dict[tuple[Any, ...], tuple[Resource, dict[tuple[Any, ...], tuple[Scope, list[Span]]]]] = {}
    for span in spans:
        _, scopes = resources.setdefault(_resource_key(span.resource), (span.resource, {}))
        scopes.setdefault(_scope_key(span.scope), (span.scope, []))[1].append(span)
    return [(resource, list(scopes.values())) for resource, scopes in resources.values()]


def _times(span: Span) -> tuple[int, int]:
    """(start, end) as OTLP's unsigned 64-bit nanoseconds (undoes the int64 view of storage)."""
    return span.start_ns & _MASK64, (span.start_ns + span.duration_ns) & _MASK64


# ---------------------------------------------------------------------------------------------
# Protobuf
# ---------------------------------------------------------------------------------------------


def _set_any_value(av: AnyValue, enc: str) -> None:
    tag, payload = enc[:1], enc[1:]
    if tag == "s":
        av.string_value = payload
    elif tag == "i":
        av.int_value = int(payload)
    elif tag == "b":
        av.bool_value = payload == "true"
    elif tag == "d":
        av.double_value = float(payload)
    elif tag == "y":
        av.bytes_value = base64.b64decode(payload)
    elif tag in ("a", "k"):
        json_format.ParseDict(_json_any_value(enc), av)
    elif tag != "n":
        raise ValueError(f"bad encoded attribute value {enc[:20]!r}")


def _key_values(attributes: dict[str, str]) -> list[KeyValue]:
    out = []
    for key, enc in attributes.items():
        kv = KeyValue(key=key)
        kv.value.SetInParent()
        _set_any_value(kv.value, enc)
        out.append(kv)
    return out


def _proto_event(e: Event) -> ProtoSpan.Event:
    return ProtoSpan.Event(
        time_unix_nano=e.time_ns & _MASK64,
        name=e.name,
        attributes=_key_values(e.attributes),
        dropped_attributes_count=e.dropped_attributes_count,
    )


def _proto_link(link: Link) -> ProtoSpan.Link:
    return ProtoSpan.Link(
        trace_id=link.trace_id,
        span_id=link.span_id,
        trace_state=link.trace_state,
        flags=link.flags,
        attributes=_key_values(link.attributes),
        dropped_attributes_count=link.dropped_attributes_count,
    )


def _proto_span(span: Span) -> ProtoSpan:
    start, end = _times(span)
    return ProtoSpan(
        trace_id=span.trace_id,
        span_id=span.span_id,
        trace_state=span.trace_state,
        parent_span_id=span.parent_span_id,
        flags=span.flags,
        name=span.name,
        kind=span.kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_key_values(span.attributes),
        dropped_attributes_count=span.dropped_attributes_count,
        events=[_proto_event(e) for e in span.events],
        dropped_events_count=span.dropped_events_count,
        links=[_proto_link(link) for link in span.links],
        dropped_links_count=span.dropped_links_count,
        status=Status(code=span.status_code, message=span.status_message),
    )


def spans_to_traces_data(spans: list[Span]) -> TracesData:
    """OTLP ``TracesData`` of the spans (its bytes also parse as an ExportTraceServiceRequest)."""
    data = TracesData()
    for resource, scopes in group_spans(spans):
        rs = ResourceSpans(schema_url=resource.schema_url)
        rs.resource.attributes.extend(_key_values(resource.attributes))
        rs.resource.dropped_attributes_count = resource.dropped_attributes_count
        for scope, scope_spans in scopes:
            ss = ScopeSpans(schema_url=scope.schema_url, spans=[_proto_span(s) for s in scope_spans])
            ss.scope.name = scope.name
            ss.scope.version = scope.version
            ss.scope.attributes.extend(_key_values(scope.attributes))
            ss.scope.dropped_attributes_count = scope.dropped_attributes_count
            rs.scope_spans.append(ss)
        data.resource_spans.append(rs)
    return data


# ---------------------------------------------------------------------------------------------
# OTLP/JSON
# ---------------------------------------------------------------------------------------------


def _json_any_value(enc: str) -> dict[str, Any]:
    value = decode_to_json(enc)
    if enc[:1] in ("a", "k") and ("NaN" in enc or "Infinity" in enc):
        value = _finite_doubles(value)
    return value


def _finite_doubles(node: Any) -> Any:
    """proto3 JSON writes non-finite doubles as strings; json.loads gave floats."""
    if isinstance(node, dict):
        return {k: _finite_doubles(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_finite_doubles(v) for v in node]
    if isinstance(node, float) and not math.isfinite(node):
        return "NaN" if math.isnan(node) else ("Infinity" if node > 0 else "-Infinity")
    return node


def _json_attributes(out: dict[str, Any], attributes: dict[str, str], dropped: int) -> dict[str, Any]:
    if attributes:
        out["attributes"] = [{"key": k, "value": _json_any_value(v)} for k, v in attributes.items()]
    if dropped:
        out["droppedAttributesCount"] = dropped
    return out


def _json_event(e: Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if e.time_ns:
        out["timeUnixNano"] = str(e.time_ns & _MASK64)
    if e.name:
        out["name"] = e.name
    return _json_attributes(out, e.attributes, e.dropped_attributes_count)


def _json_link(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": link.trace_id.hex(), "spanId": link.span_id.hex()}
    if link.trace_state:
        out["traceState"] = link.trace_state
    _json_attributes(out, link.attributes, link.dropped_attributes_count)
    if link.flags:
        out["flags"] = link.flags
    return out


def _json_span(span: Span) -> dict[str, Any]:
    start, end = _times(span)
    out: dict[str, Any] = {"traceId": span.trace_id.hex(), "spanId": span.span_id.hex()}
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id.hex()
    if span.flags:
        out["flags"] = span.flags
    if span.name:
        out["name"] = span.name
    if span.kind:
        out["kind"] = span.kind
    if start:
        out["startTimeUnixNano"] = str(start)
    if end:
        out["endTimeUnixNano"] = str(end)
    _json_attributes(out, span.attributes, span.dropped_attributes_count)
    if span.events:
        out["events"] = [_json_event(e) for e in span.events]
    if span.dropped_events_count:
        out["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        out["links"] = [_json_link(link) for link in span.links]
    if span.dropped_links_count:
        out["droppedLinksCount"] = span.dropped_links_count
    status: dict[str, Any] = {}
    if span.status_message:
        status["message"] = span.status_message
    if span.status_code:
        status["code"] = span.status_code
    out["status"] = status
    return out


def spans_to_otlp_json(spans: list[Span]) -> dict[str, Any]:
    """OTLP/JSON ``TracesData`` (``{"resourceSpans": [...]}``) of the spans."""
    resource_spans = []
    for resource, scopes in group_spans(spans):
        scope_spans = []
        for scope, members in scopes:
            scope_json: dict[str, Any] = {}
            if scope.name:
                scope_json["name"] = scope.name
            if scope.version:
                scope_json["version"] = scope.version
            _json_attributes(scope_json, scope.attributes, scope.dropped_attributes_count)
            entry: dict[str, Any] = {"scope": scope_json, "spans": [_json_span(s) for s in members]}
            if scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        rs: dict[str, Any] = {
            "resource": _json_attributes({}, resource.attributes, resource.dropped_attributes_count),
            "scopeSpans": scope_spans,
        }
        if resource.schema_url:
            rs["schemaUrl"] = resource.schema_url
        resource_spans.append(rs)
    return {"resourceSpans": resource_spans}
