"""Figures across traces: latency of a service's spans, per-operation stats, what the slow ones
have in common, and the service map.

Latency and per-operation figures are exact over the whole range: they aggregate every matching
span, read from the store's ``span_latency_rows`` (start, duration, error flag and trace id of
each span; duration bounds are applied here), with vectorised percentiles, histogram and series
(``analysis/latency.py``); ``entryOnly`` keeps the spans whose parent is not in their own
service (the store decides that over every stored span). The attribute differences need every
attribute of the spans, so they read the most recent ``maxTraces`` traces matching the filter
(``find_traces``, raw) and aggregate their matching spans here, as a sample: the response says
how many traces were scanned and whether more matched (``truncated``); ``coveredStartNs`` is
where the scanned ones begin, and rates are computed over that period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, Query

from spanlake.model import SPAN_KIND_NAMES, Span
from spanlake.query.analysis.attributes import over_represented_attributes
from spanlake.query.analysis.latency import (
    LatencyColumns,
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

MaxTracesParam = Annotated[int, Query(ge=1, le=50_000, description="Most recent matching traces to scan, where whole "
                                                                    "traces are needed (attribute differences).")]
MaxSpansParam = Annotated[int, Query(ge=1, le=50_000_000, description="Most matching spans to aggregate; beyond it the "
                                                                      "latest ones are (truncated).")]
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


@dataclass
class ExactSample:
    """Every span matching a filter (up to ``max_spans``, the latest), as columns."""

    columns: LatencyColumns
    filter: SpanFilter
    truncated: bool

    @property
    def covered_start_ns(self) -> int:
        if self.truncated and len(self.columns):
            return max(self.filter.start_ns, int(self.columns.time_ns.min()))
        return self.filter.start_ns

    @property
    def seconds(self) -> float:
        return max(self.filter.end_ns - self.covered_start_ns, 1) / 1e9

    def info(self) -> dict[str, Any]:
        ids = self.columns.trace_ids
        traces = len(set(ids)) if isinstance(ids, list) else pc.count_distinct(ids).as_py() if len(ids) else 0
        return {"startNs": self.filter.start_ns, "endNs": self.filter.end_ns, "tracesScanned": traces,
                "truncated": self.truncated, "coveredStartNs": self.covered_start_ns}


def exact_spans(svc: QueryService, f: SpanFilter, max_spans: int, operation: Any = ..., span_kind: Any = ...,
                entry_only: bool = False) -> ExactSample:
    """Every span matching ``f`` (``operation``/``span_kind`` override the filter's; with
    ``entry_only``, its entry spans only), from the store's span-level rows, with the filter's
    duration bounds applied."""
    table = svc.span_latency_rows(
        f.service,  # None: every service
        f.operation if operation is ... else operation,
        f.span_kind if span_kind is ... else span_kind,
        f.attributes, f.start_ns, f.end_ns, max_spans + 1, entry_only,
    )
    truncated = table.num_rows > max_spans
    if truncated:
        table = table.slice(table.num_rows - max_spans)
    cols = LatencyColumns.of_table(table)
    if f.min_duration_ns is not None or f.max_duration_ns is not None:
        keep = np.ones(len(cols), dtype=np.bool_)
        if f.min_duration_ns is not None:
            keep &= cols.duration_ns >= f.min_duration_ns
        if f.max_duration_ns is not None:
            keep &= cols.duration_ns <= f.max_duration_ns
        if not keep.all():
            cols = cols.take(keep)
    return ExactSample(cols, f, truncated)


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
    maxSpans: MaxSpansParam = 20_000_000,
) -> dict:
    """Count, error rate, p50/p90/p95/p99/max, a log-scale histogram (each bucket with example
    traces) and a time series of the same figures, over every span matching the filter in the
    range (with ``entryOnly``, every matching entry span; ``maxTraces`` is accepted for
    compatibility and unused)."""
    step_ns = duration_ns(step, "step") or auto_step(f.end_ns - f.start_ns)
    if step_ns <= 0 or (f.end_ns - f.start_ns) // step_ns > 10_000:
        raise bad_request("unable to parse param 'step': at most 10000 steps per range")
    sample = exact_spans(svc, f, maxSpans, entry_only=entryOnly)
    cols = sample.columns
    buckets = latency_histogram(cols, buckets_per_decade=bucketsPerDecade, examples_per_bucket=examples)
    series = latency_series(cols, step_ns, start_ns=f.start_ns, end_ns=f.end_ns, examples=examples)
    return {
        **sample.info(),
        "stepNs": step_ns,
        "summary": figures(summarize_latency(cols), sample.seconds),
        "histogram": [{"lowerNs": b.lower_ns, "upperNs": b.upper_ns, "count": b.count, "errorCount": b.error_count,
                       "exampleTraceIds": [hex_trace_id(t) for t in b.example_trace_ids]} for b in buckets],
        "series": [{"timeNs": p.time_ns, **figures(p.summary, step_ns / 1e9),
                    "exampleTraceIds": [hex_trace_id(t) for t in p.slowest_trace_ids]} for p in series],
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
    maxSpans: MaxSpansParam = 20_000_000,
) -> dict:
    """Per (operation, span kind) of the service: every span of the range (``maxTraces`` is
    accepted for compatibility and unused)."""
    start_ns, end_ns = time_range(start, end, lookback)
    f = SpanFilter(service, None, None, (), start_ns, end_ns, None, None)
    ops = []
    truncated, traces, covered = False, 0, start_ns
    for op in svc.get_operations(service):
        sample = exact_spans(svc, f, maxSpans, operation=op.name, span_kind=op.span_kind)
        if not len(sample.columns):
            continue
        truncated |= sample.truncated
        traces += sample.info()["tracesScanned"]  # a trace counts once per operation it has
        covered = max(covered, sample.covered_start_ns)
        ops.append({"name": op.name, "spanKind": SPAN_KIND_NAMES.get(op.span_kind, str(op.span_kind)),
                    "totalNs": int(sample.columns.duration_ns.sum()),
                    **figures(summarize_latency(sample.columns), sample.seconds)})
    ops.sort(key=lambda o: (-o["totalNs"], o["name"]))
    return {"startNs": start_ns, "endNs": end_ns, "tracesScanned": traces, "truncated": truncated,
            "coveredStartNs": covered, "service": service, "operations": ops}


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
