"""Builders of raw OTLP trace requests for receiver tests."""

from __future__ import annotations

import os
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def kv(key: str, value) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in value.items()]))
    return AnyValue(string_value=str(value))


def make_span(trace_id: bytes | None = None, span_id: bytes | None = None, parent: bytes = b"",
              name: str = "op", start_ns: int | None = None, duration_ns: int = 1_000_000, **attrs) -> Span:
    start = start_ns if start_ns is not None else time.time_ns()
    return Span(
        trace_id=trace_id if trace_id is not None else os.urandom(16),
        span_id=span_id if span_id is not None else os.urandom(8),
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration_ns,
        attributes=[kv(k.replace("__", "."), v) for k, v in attrs.items()],
        status=Status(code=Status.STATUS_CODE_OK),
    )


def make_request(service: str, spans: list[Span], resource_attrs: dict | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([kv("service.name", service)] + [kv(k, v) for k, v in (resource_attrs or {}).items()])
    ss = rs.scope_spans.add()
    ss.scope.name = "builder"
    ss.spans.extend(spans)
    return req
