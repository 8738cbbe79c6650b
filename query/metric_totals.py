"""Cumulative totals of the derived series, for ``/metrics``, from the stored deltas.

Every receiver process stores per-interval deltas, so the total of a series is the sum of all
its rows, whichever process wrote them: correct with any number of workers, and unaffected by
restarts (a total only drops when retention deletes rows, which a scraper reads as a reset).

Summing all history at every scrape would grow with retention, so totals are cached: rows
older than :data:`CLOSE_LAG_NS` (aligned to 5-minute windows, so the store answers from its
rollup) are added into the cache once, and only the recent, still-open part is read at each
scrape. A row that lands more than the lag late is missed until the next restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

from spanlake.metrics_model import DERIVED_METRICS, HISTOGRAM_KINDS
from spanlake.storage.api import Exemplar, SampleQuery, SampleSeries
from spanlake.storage.samples_common import latest_per_bucket

WINDOW_NS = 300 * 1_000_000_000
CLOSE_LAG_NS = 600 * 1_000_000_000
#: The open part reaches this far past "now" (rows are labelled with their interval's start).
_AHEAD_NS = 3_600 * 1_000_000_000
#: Exemplars on /metrics come from rows of the last this long.
EXEMPLAR_WINDOW_NS = 120 * 1_000_000_000


@dataclass
class Total:
    metric: str
    labels: dict[str, str]
    kind: str
    value: float = 0.0  # counter total, or histogram sum
    count: float = 0.0
    bounds: list[float] | None = None
    buckets: list[float] | None = None
    exemplars: list[Exemplar] = field(default_factory=list)

    def add(self, s: SampleSeries) -> None:
        for i in range(len(s.times_ns)):
            self.value += s.values[i]
            if s.kind in HISTOGRAM_KINDS and s.bounds is not None and s.buckets is not None and s.counts is not None:
                bounds, buckets = s.bounds[i], s.buckets[i]
                if self.bounds != bounds or self.buckets is None:
                    # New or changed bounds: the buckets start again (the sum and count go on).
                    self.bounds, self.buckets = list(bounds), [0.0] * len(buckets)
                self.buckets = [a + b for a, b in zip(self.buckets, buckets)]
                self.count += s.counts[i]
            if s.exemplars is not None:
                self.exemplars = latest_per_bucket([*self.exemplars, *s.exemplars[i]])

    def copy(self) -> "Total":
        return Total(self.metric, dict(self.labels), self.kind, self.value, self.count,
                     None if self.bounds is None else list(self.bounds),
                     None if self.buckets is None else list(self.buckets), list(self.exemplars))


class DerivedTotals:
    """Totals of ``metrics`` per series; :meth:`snapshot` is safe to call from any thread."""

    def __init__(
        self,
        read: Callable[[SampleQuery], list[SampleSeries]],
        metrics: Sequence[str] = tuple(m.name for m in DERIVED_METRICS),
        close_lag_ns: int = CLOSE_LAG_NS,
    ) -> None:
        self._read = read
        self._metrics = tuple(metrics)
        self._lag = close_lag_ns
        self._lock = threading.Lock()
        self._closed_until: int | None = None
        self._closed: dict[tuple, Total] = {}

    def snapshot(self, now_ns: int) -> list[Total]:
        """Totals of every series up to now, ordered by metric and labels."""
        with self._lock:
            until = (now_ns - self._lag) // WINDOW_NS * WINDOW_NS
            start = 0 if self._closed_until is None else self._closed_until
            if until > start:
                self._merge(self._closed, self._query(start, until))
                self._closed_until = until
            elif self._closed_until is None:
                self._closed_until = start
            totals = {k: t.copy() for k, t in self._closed.items()}
            open_from = self._closed_until
        end = now_ns + _AHEAD_NS
        self._merge(totals, self._query(open_from, end))
        # Exemplars come from the latest rows only: recent spans are the ones worth a link, and
        # reading every stored exemplar at each scrape would cost more than the totals.
        recent = max(open_from, now_ns - EXEMPLAR_WINDOW_NS)
        for s in self._query(recent, end, exemplars=True):
            total = totals.get((s.metric, tuple(sorted(s.labels.items())), s.kind))
            if total is not None and s.exemplars:
                total.exemplars = latest_per_bucket(e for step in s.exemplars for e in step)
        return sorted(totals.values(), key=lambda t: (t.metric, sorted(t.labels.items())))

    def _query(self, start: int, end: int, exemplars: bool = False) -> list[SampleSeries]:
        return self._read(SampleQuery(self._metrics, start, end, end - start, exemplars=exemplars))

    @staticmethod
    def _merge(into: dict[tuple, Total], series: list[SampleSeries]) -> None:
        for s in series:
            key = (s.metric, tuple(sorted(s.labels.items())), s.kind)
            total = into.get(key)
            if total is None:
                total = into[key] = Total(s.metric, dict(s.labels), s.kind)
            total.add(s)
