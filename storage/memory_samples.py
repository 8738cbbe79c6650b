"""Metric samples of the :class:`~spanlake.storage.memory.MemoryStore`: rows in a list.

The reference for :class:`~spanlake.storage.api.MetricReader` semantics: each query loops over
every row, groups by series and step, and combines rows as the sample kind says.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from spanlake.metrics_model import DELTA_HISTOGRAM, HISTOGRAM_KINDS, SUMMED_KINDS, SampleBatch
from spanlake.storage.api import SampleQuery, SampleSeries, StoreClosed
from spanlake.storage.samples_common import check_query, latest_per_bucket, matches, sort_series


class MemorySamples:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self.closed = False

    def write(self, batch: SampleBatch) -> "Future[None]":
        rows = batch.table.to_pylist()
        with self._lock:
            if self.closed:
                raise StoreClosed("the store is closed")
            self._rows.extend(rows)
        fut: Future[None] = Future()
        fut.set_result(None)
        return fut

    def query(self, q: SampleQuery) -> list[SampleSeries]:
        check_query(q)
        with self._lock:
            if self.closed:
                raise StoreClosed("the store is closed")
            rows = list(self._rows)
        names = set(q.metrics)
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in rows:
            if names and r["metric"] not in names:
                continue
            if not q.start_ns <= r["time_ns"] < q.end_ns:
                continue
            labels = dict(r["labels"] or [])
            if not matches(r["metric"], labels, q.matchers):
                continue
            step = (r["time_ns"] - q.start_ns) // q.step_ns
            groups.setdefault((r["metric"], r["series_id"], r["kind"], step), []).append(r)
        out: dict[tuple, SampleSeries] = {}
        for (metric, sid, kind, step), members in sorted(groups.items(), key=lambda kv: kv[0][:3] + (kv[0][3],)):
            latest = max(members, key=lambda r: r["time_ns"])
            if kind in HISTOGRAM_KINDS:
                # Rows whose bounds differ from the latest row's cannot be added to it.
                members = [r for r in members if (r["bounds"] or []) == (latest["bounds"] or [])]
            s = out.get((metric, sid, kind))
            if s is None:
                s = out[(metric, sid, kind)] = SampleSeries(
                    metric, dict(latest["labels"] or []), kind, bool(latest["monotonic"]),
                    counts=[] if kind in HISTOGRAM_KINDS else None,
                    bounds=[] if kind in HISTOGRAM_KINDS else None,
                    buckets=[] if kind in HISTOGRAM_KINDS else None,
                    exemplars=[] if q.exemplars else None,
                )
            s.monotonic = s.monotonic or any(r["monotonic"] for r in members)
            s.times_ns.append(q.start_ns + step * q.step_ns)
            s.last_ns.append(latest["time_ns"])
            s.start_ns.append(latest["start_ns"])
            summed = kind in SUMMED_KINDS
            s.values.append(sum(r["value"] for r in members) if summed else latest["value"])
            if kind in HISTOGRAM_KINDS:
                assert s.counts is not None and s.bounds is not None and s.buckets is not None
                s.counts.append(sum(r["count"] or 0.0 for r in members) if summed else latest["count"])
                s.bounds.append(list(latest["bounds"] or []))
                if kind == DELTA_HISTOGRAM:
                    width = len(latest["buckets"] or [])
                    s.buckets.append([sum((r["buckets"] or [0.0] * width)[i] for r in members) for i in range(width)])
                else:
                    s.buckets.append(list(latest["buckets"] or []))
            if s.exemplars is not None:
                s.exemplars.append(latest_per_bucket(e for r in members for e in (r["exemplars"] or [])))
        return sort_series(list(out.values()))

    def close(self) -> None:
        with self._lock:
            self.closed = True
