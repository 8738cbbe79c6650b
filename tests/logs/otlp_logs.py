"""Builders of raw OTLP log requests for the log tests."""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from tests.e2e.otlp_builders import any_value, kv


def make_log(body: Any = "hello", *, time_ns: int | None = None, severity: int = 9, severity_text: str = "",
             trace_id: bytes = b"", span_id: bytes = b"", attrs: dict[str, Any] | None = None,
             event_name: str = "", flags: int = 0, observed_ns: int | None = None) -> LogRecord:
    t = time.time_ns() if time_ns is None else time_ns
    record = LogRecord(
        time_unix_nano=t,
        observed_time_unix_nano=t if observed_ns is None else observed_ns,
        severity_number=severity,
        severity_text=severity_text,
        trace_id=trace_id,
        span_id=span_id,
        flags=flags,
        event_name=event_name,
        attributes=[kv(k, v) for k, v in (attrs or {}).items()],
    )
    if body is not None:
        record.body.CopyFrom(any_value(body))
    return record


def make_logs_request(service: str, records: list[LogRecord], resource_attrs: dict | None = None,
                      scope: str = "log-builder") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend([kv("service.name", service)] + [kv(k, v) for k, v in (resource_attrs or {}).items()])
    sl = rl.scope_logs.add()
    sl.scope.name = scope
    sl.log_records.extend(records)
    return req
