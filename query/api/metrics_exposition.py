"""The derived series on ``/metrics``: span metrics, service graph and log counts as a
Prometheus scrape sees them (cumulative totals from the stored deltas, see
:mod:`spanlake.query.metric_totals`), with one exemplar (trace and span id) per histogram
bucket in the OpenMetrics format.

Label sets differ between series of one family (extra dimensions, the overflow series), so
samples are added one by one rather than through the fixed-label ``*MetricFamily`` helpers.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar as PromExemplar
from prometheus_client.utils import floatToGoString

from spanlake.metrics_model import DERIVED_METRICS, HISTOGRAM_KINDS
from spanlake.query.metric_totals import DerivedTotals, Total

log = logging.getLogger("spanlake.query.metrics")

_BY_NAME = {m.name: m for m in DERIVED_METRICS}


class DerivedSeriesCollector(Collector):
    """A prometheus_client collector reading the totals at scrape time."""

    def __init__(self, totals: DerivedTotals, clock: Callable[[], int] = time.time_ns) -> None:
        self._totals = totals
        self._clock = clock

    def collect(self) -> Iterator[Metric]:  # type: ignore[override]
        try:
            totals = self._totals.snapshot(self._clock())
        except Exception:  # a scrape still gets Spanlake's own metrics
            log.exception("reading derived series for /metrics failed")
            return
        families: dict[str, Metric] = {}
        for t in totals:
            spec = _BY_NAME.get(t.metric)
            if spec is None:
                continue
            family = families.get(spec.name)
            if family is None:
                typ = "histogram" if spec.kind in HISTOGRAM_KINDS else "counter"
                family = families[spec.name] = Metric(spec.family, spec.help, typ)
            if t.kind in HISTOGRAM_KINDS:
                _add_histogram(family, spec.family, t)
            else:
                family.add_sample(spec.name, t.labels, t.value)
        yield from families.values()


def _add_histogram(family: Metric, name: str, t: Total) -> None:
    bounds = list(t.bounds or []) + [math.inf]
    buckets = list(t.buckets or [t.count])
    exemplars = {e.bucket: e for e in t.exemplars}
    cumulative = 0.0
    for i, (bound, n) in enumerate(zip(bounds, buckets)):
        cumulative += n
        e = exemplars.get(i)
        exemplar = None
        if e is not None and e.trace_id:
            exemplar = PromExemplar({"trace_id": e.trace_id, "span_id": e.span_id}, e.value, e.time_ns / 1e9)
        family.add_sample(name + "_bucket", {**t.labels, "le": floatToGoString(bound)}, cumulative, exemplar=exemplar)
    family.add_sample(name + "_sum", t.labels, t.value)
    family.add_sample(name + "_count", t.labels, cumulative)
