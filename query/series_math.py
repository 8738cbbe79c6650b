"""Arithmetic over stored sample series: increases, sums by label, windowed rates, quantiles.

Everything works on the per-step lists of :class:`~spanlake.storage.api.SampleSeries` turned
into numpy arrays, so a dashboard query over thousands of steps stays in vectorised code.

Derived series are stored as per-interval deltas, so the increase of a counter over a window
is the sum of the rows whose interval *ended* inside the window: exact, with none of the
extrapolation ``rate()`` needs over scraped cumulative samples. Cumulative OTLP series are
turned into deltas first (a drop of the value or a new start time is a counter reset).
:func:`histogram_quantile` is Prometheus's ``bucketQuantile``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from spanlake.metrics_model import CUMULATIVE, CUMULATIVE_HISTOGRAM, HISTOGRAM_KINDS
from spanlake.storage.api import SampleSeries


@dataclass
class Series:
    """One series (or a sum of several) as arrays over its steps."""

    labels: dict[str, str]
    kind: str
    times: np.ndarray  # int64 step starts, increasing
    values: np.ndarray  # float64: deltas, gauge values or histogram sums
    counts: np.ndarray | None = None  # histogram counts per step
    bounds: list[float] | None = None
    buckets: np.ndarray | None = None  # steps x (len(bounds) + 1), per-bucket counts

    @property
    def is_histogram(self) -> bool:
        return self.buckets is not None


def to_arrays(s: SampleSeries) -> Series:
    """Arrays of a stored series. Histogram steps whose bounds differ from the series' latest
    bounds are left out (they cannot be added bucket by bucket)."""
    times = np.asarray(s.times_ns, dtype=np.int64)
    values = np.asarray(s.values, dtype=np.float64)
    if s.kind not in HISTOGRAM_KINDS or s.bounds is None or s.buckets is None or s.counts is None:
        return Series(dict(s.labels), s.kind, times, values)
    bounds = s.bounds[-1] if s.bounds else []
    keep = np.array([b == bounds and len(k) == len(bounds) + 1 for b, k in zip(s.bounds, s.buckets)], dtype=bool)
    buckets = np.array([k for k, ok in zip(s.buckets, keep) if ok], dtype=np.float64).reshape(-1, len(bounds) + 1)
    return Series(dict(s.labels), s.kind, times[keep], values[keep], np.asarray(s.counts, dtype=np.float64)[keep],
                  list(bounds), buckets)


def increases(s: SampleSeries, range_start_ns: int) -> Series:
    """Per-step increases of a counter or histogram (deltas as they are; cumulative series
    differenced with resets). A cumulative series' first step counts in full only when the
    series started inside the range (otherwise its earlier history is unknown: 0)."""
    a = to_arrays(s)
    if s.kind not in (CUMULATIVE, CUMULATIVE_HISTOGRAM) or len(a.times) == 0:
        return a
    keep = [i for i, ok in enumerate(_histogram_mask(s)) if ok] if a.is_histogram else list(range(len(s.times_ns)))
    starts = np.asarray([s.start_ns[i] for i in keep], dtype=np.int64)
    reset = np.ones(len(a.times), dtype=bool)
    reset[1:] = (starts[1:] != starts[:-1]) | (a.values[1:] < a.values[:-1]) | (
        (a.counts[1:] < a.counts[:-1]) if a.counts is not None else False
    )
    first_full = starts[0] >= range_start_ns
    a.values = _difference(a.values, reset, first_full)
    if a.counts is not None and a.buckets is not None:
        a.counts = _difference(a.counts, reset, first_full)
        a.buckets = _difference(a.buckets, reset, first_full)
    a.kind = "delta_histogram" if a.is_histogram else "delta"
    return a


def _histogram_mask(s: SampleSeries) -> list[bool]:
    bounds = s.bounds[-1] if s.bounds else []
    return [b == bounds and len(k) == len(bounds) + 1 for b, k in zip(s.bounds or [], s.buckets or [])]


def _difference(x: np.ndarray, reset: np.ndarray, first_full: bool) -> np.ndarray:
    out = x.copy()
    out[1:] = x[1:] - x[:-1]
    where = reset.copy()
    where[0] = first_full
    out[where] = x[where]
    if not first_full:
        out[0] = 0
    return out


def group_key(labels: dict[str, str], by: Sequence[str] | None) -> tuple:
    if by is None:
        return tuple(sorted(labels.items()))
    return tuple((k, labels[k]) for k in by if labels.get(k, "") != "")


def sum_by(series: Iterable[Series], by: Sequence[str] | None) -> list[Series]:
    """Add up series with the same values of the ``by`` labels (every label when None), step by
    step. Histograms are added bucket by bucket when their bounds agree; a histogram with other
    bounds than the first of its group is left out."""
    groups: dict[tuple, list[Series]] = {}
    for s in series:
        groups.setdefault(group_key(s.labels, by), []).append(s)
    out = []
    for key, members in groups.items():
        members = [m for m in members if not m.is_histogram or m.bounds == members[0].bounds]
        times = np.unique(np.concatenate([m.times for m in members]))
        values = np.zeros(len(times))
        counts = np.zeros(len(times)) if members[0].is_histogram else None
        buckets = np.zeros((len(times), len(members[0].bounds or []) + 1)) if members[0].is_histogram else None
        for m in members:
            idx = np.searchsorted(times, m.times)
            np.add.at(values, idx, m.values)
            if counts is not None and m.counts is not None and buckets is not None and m.buckets is not None:
                np.add.at(counts, idx, m.counts)
                np.add.at(buckets, idx, m.buckets)
        out.append(Series(dict(key), members[0].kind, times, values, counts, members[0].bounds, buckets))
    out.sort(key=lambda s: sorted(s.labels.items()))
    return out


def window_sums(times: np.ndarray, values: np.ndarray, eval_times: np.ndarray, window_ns: int,
                interval_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """For each evaluation time T, the sum of the values of the intervals ``[t, t + interval)``
    that ended in ``(T - window, T]``, and whether any did. ``values`` may be 2-D (steps first)."""
    ends = times + interval_ns
    cum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    hi = np.searchsorted(ends, eval_times, side="right")
    lo = np.searchsorted(ends, eval_times - window_ns, side="right")
    return cum[hi] - cum[lo], hi > lo


def histogram_quantile(q: float, bounds: Sequence[float], buckets: np.ndarray) -> np.ndarray:
    """Prometheus's ``histogram_quantile`` for each row of per-bucket (not cumulative) counts;
    NaN where a row has no observations."""
    buckets = np.atleast_2d(buckets)
    n = buckets.shape[0]
    if math.isnan(q):
        return np.full(n, np.nan)
    if q < 0:
        return np.full(n, -np.inf)
    if q > 1:
        return np.full(n, np.inf)
    upper = np.append(np.asarray(bounds, dtype=np.float64), np.inf)
    out = np.full(n, np.nan)
    if len(upper) < 2:
        return out
    cum = np.cumsum(buckets, axis=1)
    total = cum[:, -1]
    for i in np.flatnonzero(total > 0):
        rank = q * total[i]
        b = int(np.searchsorted(cum[i], rank, side="left"))
        if b >= len(upper) - 1:
            out[i] = upper[-2]
            continue
        if b == 0 and upper[0] <= 0:
            out[i] = upper[0]
            continue
        start = 0.0 if b == 0 else upper[b - 1]
        below = 0.0 if b == 0 else cum[i, b - 1]
        count = cum[i, b] - below
        out[i] = start + (upper[b] - start) * ((rank - below) / count) if count else upper[b]
    return out


def evaluation_times(start_ns: int, end_ns: int, step_ns: int) -> np.ndarray:
    """``start, start + step, ...`` up to and including ``end`` (Prometheus range queries)."""
    return np.arange(start_ns, end_ns + 1, step_ns, dtype=np.int64)
