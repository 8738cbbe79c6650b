"""Spans for the aggregator tests, decoded by the real trace decoder, and helpers to read rows."""

from __future__ import annotations

import os
import time

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanlake.collector.decode_traces import decode_export_trace_request
from spanlake.metrics_model import SampleRows
from spanlake.model import SpanBatch
from tests.e2e.otlp_builders import make_request, make_span

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = (Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_PRODUCER,
                                                Span.SPAN_KIND_CONSUMER, Span.SPAN_KIND_INTERNAL)
MS = 1_000_000

SEC = 1_000_000_000


class Clock:
    """A settable clock for aggregators that take ``now`` (nanoseconds)."""

    def __init__(self) -> None:
        self.now = 1_000 * SEC

    def __call__(self) -> int:
        return self.now


def edge(client: str, server: str, ctype: str | None = None) -> tuple:
    """Sorted label items of a service-graph series, as :func:`by_labels` keys them."""
    labels = {"client": client, "server": server}
    if ctype:
        labels["connection_type"] = ctype
    return tuple(sorted(labels.items()))


def span(trace_id: bytes, name: str, kind: int, duration_ms: float, parent: Span | None = None,
         error: bool = False, start_ns: int | None = None, **attrs) -> Span:
    s = make_span(trace_id, os.urandom(8), parent.span_id if parent is not None else b"", name,
                  start_ns if start_ns is not None else time.time_ns(), int(duration_ms * MS), **attrs)
    s.kind = kind
    s.status.code = 2 if error else 0
    return s


def batch(service: str, spans: list[Span], resource: dict | None = None) -> SpanBatch:
    return decode_export_trace_request(make_request(service, spans, resource).SerializeToString()).batch


def collected(*aggregators, time_ns: int = 0) -> list[dict]:
    rows = SampleRows()
    for a in aggregators:
        a.collect(time_ns, rows)
    out = rows.batch().table.to_pylist()
    for r in out:
        r["labels"] = dict(r["labels"])
    return out


def by_labels(rows: list[dict], metric: str) -> dict[tuple, dict]:
    return {tuple(sorted(r["labels"].items())): r for r in rows if r["metric"] == metric}
