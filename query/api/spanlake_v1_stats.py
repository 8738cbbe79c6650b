"""Figures across traces: latency of a service's spans, per-operation stats, what the slow ones
have in common, and the service map.

The store offers no span-level aggregation yet, so the figures come from whole traces: the most
recent ``maxTraces`` traces matching the filter are read (``find_traces``, raw) and their matching
spans aggregated here. Responses say how many traces were scanned and whether more matched
(``truncated``); ``coveredStartNs`` is where the scanned ones begin, and rates are computed over
that covered period. A store-side ``span_stats`` query would make this exact and fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from spanlake.model import SPAN_KIND_NAMES, Span
from spanlake.query.analysis.attributes import over_represented_attributes
from spanlake.query.analysis.latency import (
    LatencySummary,
    TraceRow,
    latency_histogram,
    latency_series,
    summarize_latency,
)
from spanlake.query.api.deps import QueryServiceDep
from spanlake.query.service import QueryService

from . import spanlake_v1_models as m
from .spanlake_v1_params import (
    EndParam,
    LookbackParam,
    SpanFilter,
    StartParam,
    bad_request,
    duration_ns,
    span_filter,
    span_matches,
    time_range,
)
from .spanlake_v1_trace_json import hex_trace_id

router = APIRouter()

MaxTracesParam = Annotated[int, Query(ge=1, le=50_000, description="Most recent matching traces to scan.")]
EntryOnlyParam = Annotated[bool, Query(description="Only the service's entry spans (roots, or spans whose parent "
                                                   "is in another service): its requests.")]


@dataclass
class SpanSample:
    spans: list[tuple[Span, bytes]]  # matching span, its trace id
    filter: SpanFilter
    traces_scanned: int
    truncated: bool
    covered_start_ns: int

    @property
    def seconds(self) -> float:
        return max(self.filter.end_ns - self.covered_start_ns, 1) / 1e9

    def info(self) -> dict[str, Any]:
        return {"startNs": self.filter.start_ns, "endNs": self.filter.end_ns, "tracesScanned": self.traces_scanned,
                "truncated": self.truncated, "coveredStartNs": self.covered_start_ns}

    def rows(self) -> list[TraceRow]:
        return [TraceRow(s.duration_ns, s.is_error, s.start_ns, tid) for s, tid in self.spans]


def sample_spans(svc: QueryService, f: SpanFilter, max_traces: int, entry_only: bool) -> SpanSample:
    """The spans matching ``f`` in the most recent ``max_traces`` traces that have one."""
    results = svc.find_traces(f.trace_query(max_traces), raw=True)
    out: list[tuple[Span, bytes]] = []
    for r in results:
        service_of = {s.span_id: s.service_name for s in r.spans} if entry_only else {}
        for s in r.spans:
            if not span_matches(s, f):
                continue
            if entry_only and service_of.get(s.parent_span_id) == s.service_name:
                continue
            out.append((s, r.trace_id))
    truncated = len(results) >= max_traces
    covered = f.start_ns
    if truncated and out:
        covered = max(f.start_ns, min(s.start_ns for s, _ in out))
    return SpanSample(out, f, len(results), truncated, covered)


def figures(summary: LatencySummary, seconds: float) -> dict[str, Any]:
    return {"count": summary.count, "errorCount": summary.error_count, "errorRate": summary.error_rate,
            "ratePerSecond": summary.count / seconds if seconds > 0 else 0.0,
            "p50Ns": summary.p50_ns, "p90Ns": summary.p90_ns, "p95Ns": summary.p95_ns, "p99Ns": summary.p99_ns,
            "maxNs": summary.max_ns}


def auto_step(range_ns: int) -> int:
    """A round step giving about 60 points over the range."""
    target = max(range_ns // 60, 1_000_000_000)
    for step_s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if step_s * 1_000_000_000 >= target:
            return step_s * 1_000_000_000
    return 86_400_000_000_000


@router.get("/latency", response_model=m.LatencyResult, summary="Latency, errors and rate of matching spans")
def latency(
    svc: QueryServiceDep,
    f: Annotated[SpanFilter, Depends(span_filter)],
    step: Annotated[str | None, Query(description="Time-series step, e.g. `1m`; default about 60 points.")] = None,
    bucketsPerDecade: Annotated[int, Query(ge=1, le=50, description="Histogram resolution.")] = 5,
    examples: Annotated[int, Query(ge=0, le=20, description="Example trace ids per bucket and step.")] = 3,
    entryOnly: EntryOnlyParam = False,
    maxTraces: MaxTracesParam = 2000,
) -> dict:
    """Count, error rate, p50/p90/p95/p99/max, a log-scale histogram (each bucket with example
    traces) and a time series of the same figures, over the spans matching the filter."""
    step_ns = duration_ns(step, "step") or auto_step(f.end_ns - f.start_ns)
    if step_ns <= 0 or (f.end_ns - f.start_ns) // step_ns > 10_000:
        raise bad_request("unable to parse param 'step': at most 10000 steps per range")
    sample = sample_spans(svc, f, maxTraces, entryOnly)
    rows = sample.rows()
    buckets = latency_histogram(rows, buckets_per_decade=bucketsPerDecade, examples_per_bucket=examples)
    series = latency_series(rows, step_ns, start_ns=f.start_ns, end_ns=f.end_ns)
    slowest: dict[int, list[TraceRow]] = {}
    for r in rows:
        slowest.setdefault((r.time_ns - series[0].time_ns) // step_ns if series else 0, []).append(r)
    points = []
    for j, p in enumerate(series):
        ids: list[str] = []
        for r in sorted(slowest.get(j, []), key=lambda r: -r.duration_ns):
            tid = hex_trace_id(r.trace_id)
            if tid not in ids:
                ids.append(tid)
            if len(ids) >= examples:
                break
        points.append({"timeNs": p.time_ns, **figures(p.summary, step_ns / 1e9), "exampleTraceIds": ids})
    return {
        **sample.info(),
        "stepNs": step_ns,
        "summary": figures(summarize_latency(rows), sample.seconds),
        "histogram": [{"lowerNs": b.lower_ns, "upperNs": b.upper_ns, "count": b.count, "errorCount": b.error_count,
                       "exampleTraceIds": [hex_trace_id(t) for t in b.example_trace_ids]} for b in buckets],
        "series": points,
    }


@router.get("/services/{service}/operations/stats", response_model=m.OperationStatsResult,
            summary="Rate, errors and latency of each operation of a service")
def operation_stats(
    service: str,
    svc: QueryServiceDep,
    start: StartParam = None,
    end: EndParam = None,
    lookback: LookbackParam = None,
    maxTraces: MaxTracesParam = 2000,
) -> dict:
    start_ns, end_ns = time_range(start, end, lookback)
    f = SpanFilter(service, None, None, (), start_ns, end_ns, None, None)
    sample = sample_spans(svc, f, maxTraces, entry_only=False)
    groups: dict[tuple[str, int], list[TraceRow]] = {}
    for s, tid in sample.spans:
        groups.setdefault((s.name, s.kind), []).append(TraceRow(s.duration_ns, s.is_error, s.start_ns, tid))
    ops = []
    for (name, kind), rows in groups.items():
        ops.append({"name": name, "spanKind": SPAN_KIND_NAMES.get(kind, str(kind)),
                    "totalNs": sum(r.duration_ns for r in rows), **figures(summarize_latency(rows), sample.seconds)})
    ops.sort(key=lambda o: (-o["totalNs"], o["name"]))
    return {**sample.info(), "service": service, "operations": ops}


@router.get("/attributes/differences", response_model=m.AttributeDifferencesResult,
            summary="What is different about the slow (or failing) spans")
def attribute_differences(
    svc: QueryServiceDep,
    f: Annotated[SpanFilter, Depends(span_filter)],
    threshold: Annotated[str | None, Query(description="Spans at least this slow are selected, e.g. `500ms`; "
                                                       "default the p95 of the matching spans.")] = None,
    errors: Annotated[bool, Query(description="Select the failed spans instead of the slow ones.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 30,
    entryOnly: EntryOnlyParam = False,
    maxTraces: MaxTracesParam = 2000,
) -> dict:
    """Attribute values over-represented among the selected spans against the other matching
    spans, ranked by the difference of their frequencies."""
    sample = sample_spans(svc, f, maxTraces, entryOnly)
    spans = [s for s, _ in sample.spans]
    threshold_ns: int | None = None
    if errors:
        flags = [s.is_error for s in spans]
    else:
        threshold_ns = duration_ns(threshold, "threshold")
        if threshold_ns is None:
            threshold_ns = summarize_latency(sample.rows()).p95_ns or 0
        flags = [s.duration_ns >= threshold_ns for s in spans]
    diffs = over_represented_attributes(spans, flags, limit=limit)
    return {
        **sample.info(),
        "selection": "errors" if errors else "slow",
        "thresholdNs": threshold_ns,
        "selectedCount": sum(flags),
        "restCount": len(flags) - sum(flags),
        "differences": [{
            "scope": d.scope, "key": d.key, "value": d.value, "selectedCount": d.selected_count,
            "selectedTotal": d.selected_total, "restCount": d.rest_count, "restTotal": d.rest_total,
            "selectedFrequency": d.selected_frequency, "restFrequency": d.rest_frequency, "difference": d.difference,
        } for d in diffs],
    }


@router.get("/dependencies", response_model=m.DependencyGraph, summary="Service map: who calls whom")
def dependencies(svc: QueryServiceDep, start: StartParam = None, end: EndParam = None,
                 lookback: LookbackParam = None) -> dict:
    """Services as nodes; calls between services as edges with call counts and error rates."""
    start_ns, end_ns = time_range(start, end, lookback)
    links = svc.get_dependencies(start_ns, end_ns)
    nodes: dict[str, dict[str, Any]] = {}

    def node(name: str) -> dict[str, Any]:
        return nodes.setdefault(name, {"name": name, "callsIn": 0, "callsOut": 0, "errorsIn": 0})

    edges = []
    for d in links:
        node(d.parent)["callsOut"] += d.call_count
        child = node(d.child)
        child["callsIn"] += d.call_count
        child["errorsIn"] += d.error_count
        edges.append({"parent": d.parent, "child": d.child, "callCount": d.call_count, "errorCount": d.error_count,
                      "errorRate": d.error_count / d.call_count if d.call_count else 0.0})
    return {"startNs": start_ns, "endNs": end_ns, "nodes": sorted(nodes.values(), key=lambda n: n["name"]),
            "edges": edges}
