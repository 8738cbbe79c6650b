"""Builders of test log batches: rows as the collector would make them (resource and scope rows
from the model's fingerprints, the same :class:`ResourceSpec`/:class:`ScopeSpec` spans use)."""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa

from spanlake.log_model import LOG_SCHEMA, LogBatch, body_columns
from spanlake.model import RESOURCE_SCHEMA, SCOPE_SCHEMA

from .builders import BASE_NS, ResourceSpec, ScopeSpec, enc, enc_attrs

_ids = itertools.count(1)


class LogBatchBuilder:
    """Accumulate records; :meth:`build` returns a LogBatch with the three Arrow tables."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []
        self.resources: dict[int, dict[str, Any]] = {}
        self.scopes: dict[int, dict[str, Any]] = {}

    def log(
        self,
        body: Any = "message",
        *,
        time_ns: int = BASE_NS,
        observed_time_ns: int | None = None,
        severity_number: int = 9,
        severity_text: str = "",
        attributes: dict[str, Any] | None = None,
        dropped_attributes_count: int = 0,
        flags: int = 0,
        trace_id: bytes | None = None,
        span_id: bytes | None = None,
        event_name: str = "",
        resource: ResourceSpec | None = None,
        scope: ScopeSpec | None = None,
        service: str | None = None,
        log_id: int | None = None,
    ) -> "LogBatchBuilder":
        resource = resource or ResourceSpec(service=service or "svc")
        scope = scope or ScopeSpec()
        rrow, srow = resource.row(), scope.row()
        self.resources.setdefault(rrow["resource_id"], rrow)
        self.scopes.setdefault(srow["scope_id"], srow)
        text, value = body_columns(enc(body))
        self.logs.append(
            {
                "time_ns": time_ns,
                "observed_time_ns": observed_time_ns if observed_time_ns is not None else time_ns,
                "severity_number": severity_number,
                "severity_text": severity_text,
                "body": text,
                "body_value": value,
                "attributes": list(enc_attrs(attributes).items()),
                "dropped_attributes_count": dropped_attributes_count,
                "flags": flags,
                "trace_id": trace_id,
                "span_id": span_id,
                "event_name": event_name,
                "service_name": rrow["service_name"],
                "resource_id": rrow["resource_id"],
                "scope_id": srow["scope_id"],
                "scope_name": srow["name"],
                "scope_version": srow["version"],
                "log_id": log_id if log_id is not None else next(_ids),
            }
        )
        return self

    def build(self) -> LogBatch:
        return LogBatch(
            pa.Table.from_pylist(self.logs, schema=LOG_SCHEMA),
            pa.Table.from_pylist(list(self.resources.values()), schema=RESOURCE_SCHEMA),
            pa.Table.from_pylist(list(self.scopes.values()), schema=SCOPE_SCHEMA),
        )
