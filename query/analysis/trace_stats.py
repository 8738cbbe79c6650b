"""Per-trace analysis: self time, critical path and the breakdown by service and operation.

``share_of_trace`` is self time divided by the trace duration (jaeger-ui's "ST in duration");
with parallel work the shares of a trace can add up to more than 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spanlake.model import Span

from ..assemble import AssembledTrace, assemble_trace
from .critical_path import CriticalPath, critical_path
from .self_time import self_times


@dataclass
class GroupStats:
    """Totals over the spans of one service, or one (service, operation)."""

    service: str
    operation: str | None  # None in the per-service breakdown
    count: int = 0
    total_ns: int = 0
    self_ns: int = 0
    critical_path_ns: int = 0
    errors: int = 0
    share_of_trace: float = 0.0  # self time / trace duration
    critical_path_share: float = 0.0  # critical-path time / trace duration


@dataclass
class TraceAnalysis:
    trace_id: bytes
    start_ns: int
    end_ns: int
    duration_ns: int
    span_count: int
    error_count: int
    depth: int
    services: list[str]
    root_service: str
    root_operation: str
    #: Self time per span index.
    self_ns: list[int]
    critical_path: CriticalPath
    #: Sorted by self time, largest first.
    by_service: list[GroupStats] = field(default_factory=list)
    by_operation: list[GroupStats] = field(default_factory=list)


def analyze_trace(trace: AssembledTrace | list[Span]) -> TraceAnalysis:
    """Analyse one trace (assembled, or as a plain list of spans)."""
    if not isinstance(trace, AssembledTrace):
        trace = assemble_trace(trace)
    spans = trace.spans
    own = self_times(trace)
    cp = critical_path(trace)
    duration = trace.duration_ns

    services: dict[str, GroupStats] = {}
    operations: dict[tuple[str, str], GroupStats] = {}
    for i, s in enumerate(spans):
        svc = s.service_name
        by_svc = services.get(svc)
        if by_svc is None:
            by_svc = services[svc] = GroupStats(svc, None)
        by_op = operations.get((svc, s.name))
        if by_op is None:
            by_op = operations[(svc, s.name)] = GroupStats(svc, s.name)
        for stats in (by_svc, by_op):
            stats.count += 1
            stats.total_ns += max(s.duration_ns, 0)
            stats.self_ns += own[i]
            stats.critical_path_ns += cp.time_by_span.get(i, 0)
            stats.errors += s.is_error
    for stats in (*services.values(), *operations.values()):
        if duration > 0:
            stats.share_of_trace = stats.self_ns / duration
            stats.critical_path_share = stats.critical_path_ns / duration

    first_root = spans[trace.roots[0]] if trace.roots else None
    return TraceAnalysis(
        trace_id=spans[0].trace_id if spans else b"",
        start_ns=trace.start_ns,
        end_ns=trace.end_ns,
        duration_ns=duration,
        span_count=len(spans),
        error_count=sum(s.is_error for s in spans),
        depth=trace.max_depth,
        services=sorted(services),
        root_service=first_root.service_name if first_root else "",
        root_operation=first_root.name if first_root else "",
        self_ns=own,
        critical_path=cp,
        by_service=sorted(services.values(), key=lambda g: (-g.self_ns, g.service)),
        by_operation=sorted(operations.values(), key=lambda g: (-g.self_ns, g.service, g.operation or "")),
    )
