"""Span metrics: calls and a duration histogram per service, span name, kind and status.

What the OTel Collector's ``spanmetrics`` connector produces, as Prometheus shows it:
``traces_span_metrics_calls_total`` and ``traces_span_metrics_duration_milliseconds`` with
labels ``service_name``, ``span_name``, ``span_kind`` (``SPAN_KIND_SERVER``...),
``status_code`` (``STATUS_CODE_ERROR``...) and one label per configured extra dimension (the
attribute looked up on the span, then on its resource; omitted when absent), the connector's
default buckets, and one exemplar (trace id, span id, duration) per bucket and interval.

Aggregation is vectorised over the whole Arrow batch: bucket indexes come from one
``numpy.searchsorted``, and one ``group_by`` over (labels, bucket) gives counts, duration sums
and the row of each group's exemplar, kept as a small table. Python only walks the series once
per flush, when the tables of the interval are merged by one more ``group_by``.
Spans whose duration is negative count as 0, as in the connector. Spans without a
``service.name`` count under the service name the store shows (``missing-service-name``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.series_limit import OVERFLOW_KEY, OVERFLOW_LABELS, SeriesLimit
from spanlake.metrics_model import (
    DELTA,
    DELTA_HISTOGRAM,
    SPAN_CALLS,
    SPAN_DURATION,
    SPAN_KIND_LABELS,
    STATUS_CODE_LABELS,
    ExemplarRow,
    SampleRows,
    label_name,
)
from spanlake.model import PROMOTED_KEYS, SpanBatch, string_form


def decode_label_values(encoded: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Encoded attribute values -> their string form (nulls stay null), one Python call per
    distinct value."""
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    if len(encoded) == encoded.null_count:
        return pa.nulls(len(encoded), pa.string())
    dictionary = pc.dictionary_encode(encoded)
    values = pa.array([string_form(v) for v in dictionary.dictionary.to_pylist()], pa.string())
    return values.take(dictionary.indices)


def span_attribute(batch: SpanBatch, spans: pa.Table, key: str, *, resource_fallback: bool) -> pa.Array:
    """Encoded value of attribute ``key`` on each row of ``spans`` (a selection of ``batch.spans``
    with its ``resource_id`` column), falling back to the resource's attribute when asked."""
    column = PROMOTED_KEYS.get(key)
    values = spans.column(column) if column else pc.map_lookup(spans.column("attributes"), key, "first")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if resource_fallback and values.null_count and batch.resources.num_rows:
        per_resource = pc.map_lookup(batch.resources.column("attributes"), key, "first")
        if per_resource.null_count < len(per_resource):
            ids = batch.resources.column("resource_id").combine_chunks()
            rows = pc.index_in(spans.column("resource_id"), value_set=ids)
            values = pc.coalesce(values, pc.take(per_resource, rows))
    return values


@dataclass
class _Series:
    calls: int = 0
    sum_ns: int = 0
    buckets: list[int] = field(default_factory=list)
    exemplars: dict[int, ExemplarRow] = field(default_factory=dict)


#: Partial aggregates kept between flushes are merged once they hold this many rows.
_MERGE_ROWS = 200_000


class SpanMetrics:
    """Accumulates span metrics between flushes; used by one thread (the aggregator's).

    :meth:`observe` only runs Arrow kernels: each batch becomes a small table of partial
    aggregates per (labels, bucket). :meth:`collect` merges them with one more ``group_by`` and
    walks the series once per interval, applying the cardinality limit there.
    """

    def __init__(
        self,
        dimensions: Sequence[str] = (),
        cardinality_limit: int = 0,
        bounds_ms: Sequence[float] = SPAN_DURATION.bounds,
    ) -> None:
        self.dimensions = list(dimensions)
        self._dim_labels = [label_name(d) for d in self.dimensions]
        self.bounds_ms = [float(b) for b in bounds_ms]
        self._bounds_ns = np.array([round(b * 1_000_000) for b in self.bounds_ms], dtype=np.int64)
        self._keys = ["service", "name", "kind", "status"] + [f"d{i}" for i in range(len(self.dimensions))]
        self.limit = SeriesLimit(cardinality_limit)
        self._parts: list[pa.Table] = []
        self._part_rows = 0

    def observe(self, batch: SpanBatch) -> None:
        spans = batch.spans
        if spans.num_rows == 0:
            return
        duration = np.maximum(spans.column("duration_ns").to_numpy(), 0)
        columns: dict[str, pa.Array | pa.ChunkedArray | np.ndarray] = {
            "service": spans.column("service_name"),
            "name": spans.column("name"),
            "kind": spans.column("kind"),
            "status": spans.column("status_code"),
        }
        for i, key in enumerate(self.dimensions):
            columns[f"d{i}"] = decode_label_values(span_attribute(batch, spans, key, resource_fallback=True))
        columns["bucket"] = np.searchsorted(self._bounds_ns, duration, side="left").astype(np.int16)
        columns["duration"] = duration
        columns["row"] = np.arange(spans.num_rows, dtype=np.int64)
        part = pa.table(columns).group_by(self._keys + ["bucket"], use_threads=False).aggregate(
            [("duration", "sum"), ("row", "count"), ("row", "max")]
        )
        last = part.column("row_max")
        part = part.drop_columns(["row_max"]).rename_columns(
            self._keys + ["bucket", "sum_ns", "count"]
        )
        ex_duration = pc.take(pa.array(duration), last)
        part = (part.append_column("ex_ns", ex_duration)
                .append_column("ex_end", pc.add(pc.take(spans.column("start_ns"), last), ex_duration))
                .append_column("ex_trace", pc.take(spans.column("trace_id"), last))
                .append_column("ex_span", pc.take(spans.column("span_id"), last)))
        self._parts.append(part)
        self._part_rows += part.num_rows
        if self._part_rows > _MERGE_ROWS and len(self._parts) > 1:
            self._parts = [self._merged()]
            self._part_rows = self._parts[0].num_rows

    def _merged(self) -> pa.Table:
        """The parts merged into one table of the same shape (the latest exemplar per group)."""
        merged = pa.concat_tables(self._parts).group_by(self._keys + ["bucket"], use_threads=False).aggregate(
            [("sum_ns", "sum"), ("count", "sum"), ("ex_ns", "last"), ("ex_end", "last"), ("ex_trace", "last"),
             ("ex_span", "last")]
        )
        return merged.rename_columns(self._keys + ["bucket", "sum_ns", "count", "ex_ns", "ex_end", "ex_trace", "ex_span"])

    def collect(self, time_ns: int, rows: SampleRows) -> None:
        """Append the interval's deltas to ``rows`` (labelled ``time_ns``) and start a new interval."""
        series: dict[tuple, _Series] = {}
        if self._parts:
            merged = self._merged()
            width = len(self._bounds_ns) + 1
            cols = [merged.column(k).to_pylist() for k in
                    self._keys + ["bucket", "sum_ns", "count", "ex_ns", "ex_end", "ex_trace", "ex_span"]]
            nkeys = len(self._keys)
            for row in zip(*cols):
                key = self.limit.admit(row[:nkeys])
                b, sum_ns, n, ex_ns, ex_end, tid, sid = row[nkeys:]
                s = series.get(key)
                if s is None:
                    s = series[key] = _Series(buckets=[0] * width)
                s.calls += n
                s.sum_ns += sum_ns
                s.buckets[b] += n
                if tid and (b not in s.exemplars or ex_end >= s.exemplars[b].time_ns):
                    s.exemplars[b] = ExemplarRow(b, ex_ns / 1e6, ex_end, tid.hex(), sid.hex() if sid else "")
        for key, s in series.items():
            labels = OVERFLOW_LABELS if key == OVERFLOW_KEY else self._labels(key)
            rows.add(SPAN_CALLS.name, labels, DELTA, time_ns, s.calls, monotonic=True)
            rows.add(
                SPAN_DURATION.name, labels, DELTA_HISTOGRAM, time_ns, s.sum_ns / 1e6, monotonic=True,
                count=s.calls, bounds=self.bounds_ms, buckets=s.buckets,
                exemplars=[s.exemplars[b] for b in sorted(s.exemplars)],
            )
        self._parts, self._part_rows = [], 0
        self.limit.next_interval()

    def _labels(self, key: tuple) -> dict[str, str]:
        service, name, kind, status, *dims = key
        labels = {
            "service_name": service or "",
            "span_name": name or "",
            "span_kind": SPAN_KIND_LABELS.get(kind, "SPAN_KIND_UNSPECIFIED"),
            "status_code": STATUS_CODE_LABELS.get(status, "STATUS_CODE_UNSET"),
        }
        for label, value in zip(self._dim_labels, dims):
            if value is not None and value != "":
                labels[label] = value
        return labels
