"""Metric queries over stored samples: Jaeger's RED figures and the dashboards' series.

Both read through :meth:`QueryService.query_samples` and compute with :mod:`.series_math`.

RED figures follow the PromQL that Jaeger's Prometheus reader runs against spanmetrics:

* calls: ``sum(rate(traces_span_metrics_calls_total{service_name=~S, span_kind=~K}[ratePer])) by (service_name[, span_name])``
* errors: the same with ``status_code="STATUS_CODE_ERROR"`` divided by the calls (0 where a
  service has calls and no errors, as Jaeger reports);
* latencies: ``histogram_quantile(q, sum(rate(..._duration_milliseconds_bucket{...}[ratePer])) by (service_name[, span_name], le))``

evaluated at ``endTs - lookback, ... , endTs`` every ``step``. A series has points from the
first evaluation whose window holds one of its rows; a window without rows after that is a
rate of 0, and a quantile or ratio of nothing is left out (NaN has no JSON form).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from spanlake.metrics_model import GAUGE, SPAN_CALLS, SPAN_DURATION
from spanlake.query import series_math as sm
from spanlake.storage.api import Exemplar, LabelMatcher, SampleQuery

if TYPE_CHECKING:
    from spanlake.query.service import QueryService

ERROR = "STATUS_CODE_ERROR"


@dataclass(frozen=True)
class RedQuery:
    services: tuple[str, ...]
    span_kinds: tuple[str, ...]  # SPAN_KIND_* label values
    group_by_operation: bool
    end_ns: int
    lookback_ns: int
    step_ns: int
    rate_per_ns: int


@dataclass
class Points:
    """One result series: labels in display order, and (time, value) points."""

    labels: list[tuple[str, str]]
    times: list[int]
    values: list[float]


#: Steps a RED query reads at most; longer ranges read coarser steps (5-minute multiples,
#: which the store answers from its rollup).
MAX_FETCH_STEPS = 10_000


def fetch_step(q: RedQuery, resolution_ns: int) -> int:
    """The step RED figures are computed from: the aggregation resolution when the range allows."""
    span = q.lookback_ns + q.rate_per_ns + 2 * resolution_ns
    if span // resolution_ns <= MAX_FETCH_STEPS:
        return resolution_ns
    window = 300_000_000_000
    return -(-span // MAX_FETCH_STEPS // window) * window


def _red_fetch(svc: "QueryService", q: RedQuery, metric: str, resolution_ns: int, error_only: bool = False):
    start = q.end_ns - q.lookback_ns - q.rate_per_ns - resolution_ns
    start -= start % resolution_ns
    matchers = [LabelMatcher("service_name", "=~", "|".join(re.escape(s) for s in q.services))]
    if q.span_kinds:
        matchers.append(LabelMatcher("span_kind", "=~", "|".join(re.escape(k) for k in q.span_kinds)))
    if error_only:
        matchers.append(LabelMatcher("status_code", "=", ERROR))
    series = svc.query_samples(SampleQuery((metric,), start, q.end_ns + 1, resolution_ns, tuple(matchers)))
    by = ["service_name", "span_name"] if q.group_by_operation else ["service_name"]
    return sm.sum_by((sm.to_arrays(s) for s in series), by)


def _labels(s: sm.Series) -> list[tuple[str, str]]:
    out = [("service_name", s.labels.get("service_name", ""))]
    if "span_name" in s.labels:
        out.append(("operation", s.labels["span_name"]))
    return out


def _points(labels: list[tuple[str, str]], times: np.ndarray, values: np.ndarray, since: np.ndarray) -> Points | None:
    keep = since & ~np.isnan(values)
    if not keep.any():
        return None
    return Points(labels, times[keep].tolist(), values[keep].tolist())


def _appeared(s: sm.Series, times: np.ndarray, resolution_ns: int) -> np.ndarray:
    return times >= s.times[0] + resolution_ns if len(s.times) else np.zeros(len(times), dtype=bool)


def call_rates(svc: "QueryService", q: RedQuery, resolution_ns: int) -> list[Points]:
    resolution_ns = fetch_step(q, resolution_ns)
    times = sm.evaluation_times(q.end_ns - q.lookback_ns, q.end_ns, q.step_ns)
    out = []
    for s in _red_fetch(svc, q, SPAN_CALLS.name, resolution_ns):
        sums, _ = sm.window_sums(s.times, s.values, times, q.rate_per_ns, resolution_ns)
        p = _points(_labels(s), times, sums / (q.rate_per_ns / 1e9), _appeared(s, times, resolution_ns))
        if p:
            out.append(p)
    return out


def error_rates(svc: "QueryService", q: RedQuery, resolution_ns: int) -> list[Points]:
    resolution_ns = fetch_step(q, resolution_ns)
    times = sm.evaluation_times(q.end_ns - q.lookback_ns, q.end_ns, q.step_ns)
    errors = {sm.group_key(s.labels, None): s for s in _red_fetch(svc, q, SPAN_CALLS.name, resolution_ns, True)}
    out = []
    for s in _red_fetch(svc, q, SPAN_CALLS.name, resolution_ns):
        calls, _ = sm.window_sums(s.times, s.values, times, q.rate_per_ns, resolution_ns)
        e = errors.get(sm.group_key(s.labels, None))
        failed = sm.window_sums(e.times, e.values, times, q.rate_per_ns, resolution_ns)[0] if e else np.zeros(len(times))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(calls > 0, failed / calls, np.nan)
        p = _points(_labels(s), times, ratio, _appeared(s, times, resolution_ns))
        if p:
            out.append(p)
    return out


def latencies(svc: "QueryService", q: RedQuery, quantile: float, resolution_ns: int) -> list[Points]:
    resolution_ns = fetch_step(q, resolution_ns)
    times = sm.evaluation_times(q.end_ns - q.lookback_ns, q.end_ns, q.step_ns)
    out = []
    for s in _red_fetch(svc, q, SPAN_DURATION.name, resolution_ns):
        if s.buckets is None or s.bounds is None:
            continue
        sums, _ = sm.window_sums(s.times, s.buckets, times, q.rate_per_ns, resolution_ns)
        p = _points(_labels(s), times, sm.histogram_quantile(quantile, s.bounds, sums),
                    _appeared(s, times, resolution_ns))
        if p:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------
# The series API
# ---------------------------------------------------------------------------------------------

FUNCTIONS = ("raw", "increase", "rate", "quantile")


@dataclass
class SeriesResult:
    labels: dict[str, str]
    kind: str
    times: list[int]
    values: list[float | None]
    counts: list[float] | None = None
    bounds: list[float] | None = None
    buckets: list[list[float]] | None = None
    exemplars: list[Exemplar] | None = None


def series(
    svc: "QueryService",
    metric: str,
    matchers: Sequence[LabelMatcher],
    start_ns: int,
    end_ns: int,
    step_ns: int,
    fn: str = "raw",
    by: Sequence[str] | None = None,
    quantile: float | None = None,
    exemplars: bool = False,
) -> list[SeriesResult]:
    """Series of ``metric`` per step: ``raw`` (rows combined as their kind says), ``increase``
    or ``rate`` (per second) of counters and histograms, ``quantile`` of histograms; summed by
    the ``by`` labels when given."""
    stored = svc.query_samples(SampleQuery((metric,), start_ns, end_ns, step_ns, tuple(matchers), exemplars))
    ex_by_key: dict[tuple, list[Exemplar]] = {}
    if exemplars:
        for s in stored:
            found = [e for step in (s.exemplars or []) for e in step]
            ex_by_key.setdefault(sm.group_key(s.labels, by), []).extend(found)
    if fn == "raw":
        arrays = [sm.to_arrays(s) for s in stored]
    else:
        arrays = [sm.to_arrays(s) if s.kind == GAUGE else sm.increases(s, start_ns) for s in stored]
    grouped = sm.sum_by(arrays, by) if by is not None else arrays
    out = []
    for g in grouped:
        values = g.values.astype(np.float64)
        if fn == "rate":
            values = values / (step_ns / 1e9)
        elif fn == "quantile":
            if g.buckets is None or g.bounds is None or quantile is None:
                continue
            values = sm.histogram_quantile(quantile, g.bounds, g.buckets)
        result = SeriesResult(
            g.labels, g.kind, g.times.tolist(), [None if math.isnan(v) or math.isinf(v) else v for v in values.tolist()]
        )
        if fn == "raw" and g.buckets is not None:
            result.counts, result.bounds, result.buckets = g.counts.tolist(), g.bounds, g.buckets.tolist()  # type: ignore[union-attr]
        if fn in ("increase", "rate") and g.buckets is not None and g.counts is not None:
            scale = 1.0 if fn == "increase" else 1 / (step_ns / 1e9)
            result.counts, result.bounds = (g.counts * scale).tolist(), g.bounds
            result.buckets = (g.buckets * scale).tolist()
        if exemplars:
            found = ex_by_key.get(sm.group_key(g.labels, by), [])
            result.exemplars = sorted(found, key=lambda e: e.time_ns)[-100:]
        out.append(result)
    return out
