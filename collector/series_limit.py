"""The per-metric cardinality limit of the series an aggregator derives.

A metric keeps at most ``limit`` label sets; a new label set past the limit is counted in the
metric's overflow series instead, labelled ``otel_metric_overflow="true"`` only (as the OTel
SDKs and the spanmetrics connector do). Label sets not seen for ``expire_intervals``
aggregation intervals are forgotten, which frees room for new ones, so a metric whose label
values churn (pods come and go) does not end up all in overflow. Memory stays bounded by the
limit either way.
"""

from __future__ import annotations

from typing import Hashable

from spanlake.metrics_model import OVERFLOW_LABEL

#: Key of the overflow series in an aggregator's state (no real label tuple can equal it).
OVERFLOW_KEY: tuple = ("\x00overflow",)
OVERFLOW_LABELS: dict[str, str] = {OVERFLOW_LABEL: "true"}


class SeriesLimit:
    """Admission of label sets for one metric; 0 means unlimited."""

    def __init__(self, limit: int, expire_intervals: int = 60) -> None:
        self.limit = limit
        self.expire_intervals = expire_intervals
        self._last_seen: dict[Hashable, int] = {}
        self._interval = 0
        self.overflowed = 0  # observations sent to the overflow series, for self-telemetry

    def admit(self, key: Hashable) -> Hashable:
        """``key`` itself, or :data:`OVERFLOW_KEY` when the metric is full."""
        seen = self._last_seen
        if key in seen or not self.limit or len(seen) < self.limit:
            seen[key] = self._interval
            return key
        self.overflowed += 1
        return OVERFLOW_KEY

    def next_interval(self) -> None:
        """Called at every flush: forget label sets idle for ``expire_intervals``."""
        self._interval += 1
        cutoff = self._interval - self.expire_intervals
        if self._last_seen and self._interval % 8 == 0:
            self._last_seen = {k: v for k, v in self._last_seen.items() if v >= cutoff}

    def __len__(self) -> int:
        return len(self._last_seen)
