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
    #: Service name of each span, by span index.
    span_services: list[str] = field(default_factory=list, repr=False)


def analyze_trace(trace: AssembledTrace | list[Span]) -> TraceAnalysis:
    """Analyse one trace (assembled, or as a plain list of spans)."""
    if not isinstance(trace, AssembledTrace):
        trace = assemble_trace(trace)
    spans = trace.spans
    own = self_times(trace)
    cp = critical_path(trace)
    duration = trace.duration_ns
    cp_time = cp.time_by_span.get

    # Totals per service and per (service, operation) as [count, total, self, critical path,
    # errors]; the service name is worked out once per resource object, not once per span.
    names: dict[int, str] = {}
    span_services: list[str] = []
    services: dict[str, list[int]] = {}
    operations: dict[tuple[str, str], list[int]] = {}
    error_count = 0
    for i, s in enumerate(spans):
        r = s.resource
        svc = names.get(id(r))
        if svc is None:
            svc = names[id(r)] = r.service_name
        span_services.append(svc)
        d = s.duration_ns
        t = d if d > 0 else 0
        err = 1 if s.status_code == 2 else 0
        error_count += err
        st = own[i]
        c = cp_time(i, 0)
        for totals, key in ((services, svc), (operations, (svc, s.name))):
            acc = totals.get(key)
            if acc is None:
                totals[key] = [1, t, st, c, err]
            else:
                acc[0] += 1
                acc[1] += t
                acc[2] += st
                acc[3] += c
                acc[4] += err

    def group(service: str, operation: str | None, acc: list[int]) -> GroupStats:
        g = GroupStats(service, operation, acc[0], acc[1], acc[2], acc[3], acc[4])
        if duration > 0:
            g.share_of_trace = g.self_ns / duration
            g.critical_path_share = g.critical_path_ns / duration
        return g

    by_service = [group(svc, None, acc) for svc, acc in services.items()]
    by_operation = [group(svc, op, acc) for (svc, op), acc in operations.items()]
    first_root = spans[trace.roots[0]] if trace.roots else None
    return TraceAnalysis(
        trace_id=spans[0].trace_id if spans else b"",
        start_ns=trace.start_ns,
        end_ns=trace.end_ns,
        duration_ns=duration,
        span_count=len(spans),
        error_count=error_count,
        depth=trace.max_depth,
        services=sorted(services),
        root_service=first_root.service_name if first_root else "",
        root_operation=first_root.name if first_root else "",
        self_ns=own,
        critical_path=cp,
        by_service=sorted(by_service, key=lambda g: (-g.self_ns, g.service)),
        by_operation=sorted(by_operation, key=lambda g: (-g.self_ns, g.service, g.operation or "")),
        span_services=span_services,
    )
