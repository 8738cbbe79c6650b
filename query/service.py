"""``QueryService``: the only caller of the store's readers; every API goes through it.

It reads traces, applies the standard adjusters (unless ``raw``), and hands the HTTP and gRPC
layers ready-made results, so every API family sees the same data the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spanlake.model import Span
from spanlake.query.adjusters.standard import adjust_trace
from spanlake.storage.api import (
    DependencyLink,
    FoundTrace,
    GetTrace,
    Operation,
    Store,
    TraceQuery,
    TraceSummary,
)


@dataclass
class TraceResult:
    """One trace as an API returns it: spans after adjusting, with their warnings."""

    trace_id: bytes
    spans: list[Span]
    span_warnings: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class QueryService:
    """Read-side facade over a :class:`Store`."""

    def __init__(self, store: Store, max_clock_skew_adjust_ns: int = 0) -> None:
        self.store = store
        self.max_clock_skew_adjust_ns = max_clock_skew_adjust_ns

    def _adjust(self, trace_id: bytes, spans: list[Span], raw: bool) -> TraceResult:
        adjusted = adjust_trace(spans, raw=raw, max_clock_skew_adjust_ns=self.max_clock_skew_adjust_ns)
        return TraceResult(trace_id, adjusted.spans, adjusted.span_warnings, adjusted.warnings)

    def get_trace(self, trace_id: bytes, start_ns: int | None = None, end_ns: int | None = None,
                  raw: bool = False) -> TraceResult | None:
        spans = self.store.get_trace(GetTrace(trace_id, start_ns, end_ns))
        if not spans:
            return None
        return self._adjust(trace_id, spans, raw)

    def get_traces(self, trace_ids: list[bytes], raw: bool = False) -> list[TraceResult]:
        """Traces in the order of ``trace_ids``; unknown ids are left out."""
        found = self.store.get_traces(trace_ids)
        return [self._adjust(t, found[t], raw) for t in trace_ids if t in found]

    def find_traces(self, query: TraceQuery, raw: bool = False) -> list[TraceResult]:
        ids = [f.trace_id for f in self.store.find_trace_ids(query)]
        return self.get_traces(ids, raw)

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        return self.store.find_trace_ids(query)

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        return self.store.find_trace_summaries(query)

    def get_services(self) -> list[str]:
        return sorted(self.store.get_services())

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        return self.store.get_operations(service, span_kind)

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        return self.store.get_dependencies(start_ns, end_ns)

    def archive_trace(self, trace_id: bytes) -> bool:
        return self.store.archive_trace(trace_id)
