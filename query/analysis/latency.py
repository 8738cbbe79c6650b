"""Latency across many traces or spans: percentiles, a log-bucketed histogram and a time series.

Input is either traces (lists of spans; duration = last end - first start, error = any span
failed, time = first start), ready rows ``(duration_ns, is_error, time_ns, trace_id)``, e.g.
trace summaries from the store, or :class:`LatencyColumns`: the same four as arrays, e.g. the
store's ``span_latency_rows`` for every matching span of a time range. All three give the same
figures; the column functions are vectorised (millions of rows), and the row functions use them.
Percentiles use the nearest-rank method, so every reported value is a duration that was observed.

Histogram buckets sit on a fixed logarithmic grid: bucket ``k`` covers
``[round(10**(k/b)), round(10**((k+1)/b)))`` nanoseconds for ``b`` buckets per decade, so
histograms of different queries line up. Durations below 1 ns fall into the first bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence, Union

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


@dataclass
class LatencyColumns:
    """Rows as columns: ``duration_ns``, ``is_error`` and ``time_ns`` as numpy arrays and
    ``trace_ids`` as a sequence of bytes (a pyarrow binary array or a list), in input order."""

    duration_ns: np.ndarray
    is_error: np.ndarray
    time_ns: np.ndarray
    trace_ids: Any

    def __len__(self) -> int:
        return len(self.duration_ns)

    @classmethod
    def of_rows(cls, rows: Sequence[TraceRow]) -> "LatencyColumns":
        n = len(rows)
        return cls(
            np.fromiter((r.duration_ns for r in rows), np.int64, n),
            np.fromiter((bool(r.is_error) for r in rows), np.bool_, n),
            np.fromiter((r.time_ns for r in rows), np.int64, n),
            [r.trace_id for r in rows],
        )

    @classmethod
    def of_table(cls, table: Any) -> "LatencyColumns":
        """From a ``span_latency_rows`` table (``start_ns`` is the time)."""

        def ints(name: str) -> np.ndarray:
            return table.column(name).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)

        return cls(
            ints("duration_ns"),
            table.column("is_error").to_numpy(zero_copy_only=False).astype(np.bool_, copy=False),
            ints("start_ns"),
            table.column("trace_id").combine_chunks() if table.num_rows else [],
        )

    def take(self, mask_or_index: np.ndarray) -> "LatencyColumns":
        index = np.nonzero(mask_or_index)[0] if mask_or_index.dtype == np.bool_ else mask_or_index
        return LatencyColumns(
            self.duration_ns[index], self.is_error[index], self.time_ns[index], _take_ids(self.trace_ids, index)
        )

    def trace_id(self, i: int) -> bytes:
        t = self.trace_ids[int(i)]
        return t if isinstance(t, bytes) else t.as_py()


def _take_ids(ids: Any, index: np.ndarray) -> Any:
    if isinstance(ids, list):
        return [ids[int(i)] for i in index]
    import pyarrow as pa

    return ids.take(pa.array(index, pa.int64()))


def _columns(items: Iterable[RowLike] | LatencyColumns) -> LatencyColumns:
    return items if isinstance(items, LatencyColumns) else LatencyColumns.of_rows(as_rows(items))


def _ranks(n: int) -> list[int]:
    # Nearest rank: the smallest value with at least q of the observations at or below it.
    return [max(math.ceil(q * n) - 1, 0) for q in QUANTILES]


def _summary_of_sorted(ordered: np.ndarray, errors: int) -> LatencySummary:
    n = len(ordered)
    if n == 0:
        return LatencySummary()
    p50, p90, p95, p99 = (int(ordered[r]) for r in _ranks(n))
    return LatencySummary(n, int(errors), int(errors) / n, p50, p90, p95, p99, int(ordered[-1]))


def _summary(durations: np.ndarray, errors: int) -> LatencySummary:
    return _summary_of_sorted(np.sort(durations), errors)


def summarize_latency(items: Iterable[RowLike] | LatencyColumns) -> LatencySummary:
    """Count, error rate, p50/p90/p95/p99 and max of durations."""
    c = _columns(items)
    return _summary(c.duration_ns, int(np.count_nonzero(c.is_error)))


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


def bucket_indexes(durations: np.ndarray, buckets_per_decade: int) -> np.ndarray:
    """:func:`bucket_index` of every duration, vectorised: log10 gives a first guess, then the
    rounded bounds of the (few) buckets in range move each guess as the scalar function does."""
    d = np.maximum(durations.astype(np.int64, copy=False), 1)
    k = np.floor(np.log10(d.astype(np.float64)) * buckets_per_decade).astype(np.int64)
    if not len(k):
        return k
    first = int(k.min()) - 2
    span = np.arange(first, int(k.max()) + 3)
    lower = np.array([bucket_bounds(int(x), buckets_per_decade)[0] for x in span], dtype=np.int64)
    for _ in range(64):
        j = np.clip(k - first, 0, len(span) - 2)
        down, up = lower[j] > d, lower[j + 1] <= d
        if not (down.any() or up.any()):
            break
        k = k - down + up
    return np.maximum(k, 0)


def _first_distinct(c: LatencyColumns, order: Iterable[int], n: int) -> list[bytes]:
    out: list[bytes] = []
    if n <= 0:
        return out
    for i in order:
        t = c.trace_id(int(i))
        if t not in out:
            out.append(t)
            if len(out) >= n:
                break
    return out


def latency_histogram(
    items: Iterable[RowLike] | LatencyColumns, *, buckets_per_decade: int = 5, examples_per_bucket: int = 3
) -> list[HistogramBucket]:
    """Histogram of durations from the lowest to the highest non-empty bucket; each bucket's
    examples are the first distinct trace ids that fell in it, in input order.

    Buckets in between that are empty are included, and bounds that round to the same integer
    (only possible below ~10 ns with many buckets per decade) give empty buckets that are skipped.
    """
    if buckets_per_decade < 1:
        raise ValueError("buckets_per_decade must be at least 1")
    c = _columns(items)
    if not len(c):
        return []
    ks = bucket_indexes(c.duration_ns, buckets_per_decade)
    lo_k = int(ks.min())
    counts = np.bincount(ks - lo_k)
    errors = np.bincount(ks - lo_k, weights=c.is_error.astype(np.int64)).astype(np.int64)
    order = np.argsort(ks, kind="stable")  # input order within each bucket
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for j in range(len(counts)):
        b = HistogramBucket(*bucket_bounds(lo_k + j, buckets_per_decade), int(counts[j]), int(errors[j]))
        if counts[j]:
            b.example_trace_ids = _first_distinct(c, order[starts[j] : starts[j + 1]], examples_per_bucket)
        if b.upper_ns > b.lower_ns:
            out.append(b)
    return out


@dataclass
class SeriesPointWithExamples(SeriesPoint):
    #: The slowest distinct traces of the step, slowest first.
    slowest_trace_ids: list[bytes] = field(default_factory=list)


def latency_series(
    items: Iterable[RowLike] | LatencyColumns,
    step_ns: int,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    examples: int = 0,
) -> list[SeriesPointWithExamples]:
    """One :class:`LatencySummary` per ``step_ns`` window, rows bucketed by their time, with
    up to ``examples`` of the slowest distinct trace ids of each window.

    Windows are aligned to multiples of ``step_ns``; ``start_ns``/``end_ns`` (end exclusive)
    default to the span of the data and drop rows outside them. Empty windows are included.
    """
    if step_ns <= 0:
        raise ValueError("step_ns must be positive")
    c = _columns(items)
    if start_ns is None and end_ns is None and not len(c):
        return []
    lo = int(c.time_ns.min()) if start_ns is None else start_ns
    hi = int(c.time_ns.max()) + 1 if end_ns is None else end_ns
    first = lo // step_ns * step_ns
    n_steps = max(0, -(-(hi - first) // step_ns))
    inside = np.nonzero((c.time_ns >= lo) & (c.time_ns < hi))[0]
    step = (c.time_ns[inside] - first) // step_ns
    # Within each step, slowest first (ties in input order: lexsort is stable); percentiles
    # read it backwards.
    order = inside[np.lexsort((-c.duration_ns[inside], step))]
    step_sorted = (c.time_ns[order] - first) // step_ns
    counts = np.bincount(step_sorted, minlength=n_steps)[:n_steps] if len(order) else np.zeros(n_steps, np.int64)
    errors = (
        np.bincount(step_sorted, weights=c.is_error[order].astype(np.int64), minlength=n_steps)[:n_steps].astype(np.int64)
        if len(order)
        else np.zeros(n_steps, np.int64)
    )
    bounds = np.concatenate([[0], np.cumsum(counts)])
    durations = c.duration_ns[order]
    out = []
    for j in range(n_steps):
        a, b = int(bounds[j]), int(bounds[j + 1])
        summary = _summary_of_sorted(durations[a:b][::-1], int(errors[j]))
        ids = _first_distinct(c, order[a:b], examples) if b > a else []
        out.append(SeriesPointWithExamples(first + j * step_ns, summary, ids))
    return out
