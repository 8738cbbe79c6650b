"""Latency across many traces: percentiles, a log-bucketed histogram and a time series.

Input is either traces (lists of spans; duration = last end - first start, error = any span
failed, time = first start) or ready rows ``(duration_ns, is_error, time_ns, trace_id)``, e.g.
trace summaries from the store. Percentiles use the nearest-rank method, so every reported value
is a duration that was observed.

Histogram buckets sit on a fixed logarithmic grid: bucket ``k`` covers
``[round(10**(k/b)), round(10**((k+1)/b)))`` nanoseconds for ``b`` buckets per decade, so
histograms of different queries line up. Durations below 1 ns fall into the first bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple, Sequence, Union

import numpy as np

from spanlake.model import Span

QUANTILES = (0.5, 0.9, 0.95, 0.99)


class TraceRow(NamedTuple):
    duration_ns: int
    is_error: bool
    time_ns: int
    trace_id: bytes


RowLike = Union[TraceRow, tuple, Sequence[Span]]


def trace_row(spans: Sequence[Span]) -> TraceRow:
    """The row of one trace (its spans need not be assembled)."""
    if not spans:
        raise ValueError("a trace needs at least one span")
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    return TraceRow(end - start, any(s.is_error for s in spans), start, spans[0].trace_id)


def as_rows(items: Iterable[RowLike]) -> list[TraceRow]:
    """Rows from traces, from rows, or from a mix of both."""
    rows = []
    for item in items:
        if isinstance(item, TraceRow):
            rows.append(item)
        elif item and isinstance(item[0], Span):
            rows.append(trace_row(item))  # type: ignore[arg-type]
        else:
            d, err, t, tid = item  # type: ignore[misc]
            rows.append(TraceRow(int(d), bool(err), int(t), tid))
    return rows


@dataclass
class LatencySummary:
    count: int = 0
    error_count: int = 0
    error_rate: float = 0.0
    p50_ns: int | None = None
    p90_ns: int | None = None
    p95_ns: int | None = None
    p99_ns: int | None = None
    max_ns: int | None = None


@dataclass
class HistogramBucket:
    lower_ns: int  # inclusive
    upper_ns: int  # exclusive
    count: int = 0
    error_count: int = 0
    #: Up to a few trace ids that fell in this bucket, in input order.
    example_trace_ids: list[bytes] = field(default_factory=list)


@dataclass
class SeriesPoint:
    time_ns: int  # start of the step
    summary: LatencySummary


def _summary(durations: np.ndarray, errors: int) -> LatencySummary:
    n = len(durations)
    if n == 0:
        return LatencySummary()
    ordered = np.sort(durations)
    # Nearest rank: the smallest value with at least q of the observations at or below it.
    ranks = [max(math.ceil(q * n) - 1, 0) for q in QUANTILES]
    p50, p90, p95, p99 = (int(ordered[r]) for r in ranks)
    return LatencySummary(n, errors, errors / n, p50, p90, p95, p99, int(ordered[-1]))


def summarize_latency(items: Iterable[RowLike]) -> LatencySummary:
    """Count, error rate, p50/p90/p95/p99 and max of trace durations."""
    rows = as_rows(items)
    return _summary(np.fromiter((r.duration_ns for r in rows), np.int64, len(rows)), sum(r.is_error for r in rows))


def bucket_bounds(k: int, buckets_per_decade: int) -> tuple[int, int]:
    """``[lower, upper)`` in nanoseconds of histogram bucket ``k``."""
    return round(10 ** (k / buckets_per_decade)), round(10 ** ((k + 1) / buckets_per_decade))


def bucket_index(duration_ns: int, buckets_per_decade: int) -> int:
    d = max(duration_ns, 1)
    k = math.floor(math.log10(d) * buckets_per_decade)
    # log10 can land a hair off at bucket edges; the rounded bounds are the truth.
    while round(10 ** (k / buckets_per_decade)) > d:
        k -= 1
    while round(10 ** ((k + 1) / buckets_per_decade)) <= d:
        k += 1
    return max(k, 0)


def latency_histogram(
    items: Iterable[RowLike], *, buckets_per_decade: int = 5, examples_per_bucket: int = 3
) -> list[HistogramBucket]:
    """Histogram of trace durations from the lowest to the highest non-empty bucket.

    Buckets in between that are empty are included, and bounds that round to the same integer
    (only possible below ~10 ns with many buckets per decade) give empty buckets that are skipped.
    """
    if buckets_per_decade < 1:
        raise ValueError("buckets_per_decade must be at least 1")
    by_index: dict[int, HistogramBucket] = {}
    for r in as_rows(items):
        k = bucket_index(r.duration_ns, buckets_per_decade)
        b = by_index.get(k)
        if b is None:
            b = by_index[k] = HistogramBucket(*bucket_bounds(k, buckets_per_decade))
        b.count += 1
        b.error_count += r.is_error
        if len(b.example_trace_ids) < examples_per_bucket and r.trace_id not in b.example_trace_ids:
            b.example_trace_ids.append(r.trace_id)
    if not by_index:
        return []
    out = []
    for k in range(min(by_index), max(by_index) + 1):
        b = by_index.get(k) or HistogramBucket(*bucket_bounds(k, buckets_per_decade))
        if b.upper_ns > b.lower_ns:
            out.append(b)
    return out


def latency_series(
    items: Iterable[RowLike], step_ns: int, *, start_ns: int | None = None, end_ns: int | None = None
) -> list[SeriesPoint]:
    """One :class:`LatencySummary` per ``step_ns`` window, rows bucketed by their time.

    Windows are aligned to multiples of ``step_ns``; ``start_ns``/``end_ns`` (end exclusive)
    default to the span of the data and drop rows outside them. Empty windows are included.
    """
    if step_ns <= 0:
        raise ValueError("step_ns must be positive")
    rows = as_rows(items)
    if start_ns is None and end_ns is None and not rows:
        return []
    lo = min(r.time_ns for r in rows) if start_ns is None else start_ns
    hi = max(r.time_ns for r in rows) + 1 if end_ns is None else end_ns
    first = lo // step_ns * step_ns
    n_steps = max(0, -(-(hi - first) // step_ns))
    durations: list[list[int]] = [[] for _ in range(n_steps)]
    errors = [0] * n_steps
    for r in rows:
        if not lo <= r.time_ns < hi:
            continue
        j = (r.time_ns - first) // step_ns
        durations[j].append(r.duration_ns)
        errors[j] += r.is_error
    return [
        SeriesPoint(first + j * step_ns, _summary(np.asarray(durations[j], dtype=np.int64), errors[j]))
        for j in range(n_steps)
    ]
