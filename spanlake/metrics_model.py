"""The metric sample model: the Arrow schema of a sample batch, sample kinds, derived series.

Every metric Spanlake keeps, whether an OTLP metric a service sent or a series derived from
spans and logs at ingest, is stored as rows of :data:`SAMPLE_SCHEMA`: one row per series per
time (per process, for derived series). Names and labels are the ones Prometheus would show:
``traces_span_metrics_calls_total{service_name="cart",span_kind="SPAN_KIND_SERVER"}``.

Sample kinds say how rows of one series combine over time:

==========================  ====================================================  =================
kind                        value                                                 within a step
==========================  ====================================================  =================
``gauge``                   the value at ``time_ns``                              latest row
``delta``                   increase since the previous row (counters, updown)    sum of the rows
``cumulative``              running total since ``start_ns`` (monotonic counter)  latest row
``delta_histogram``         bucket counts / sum / count of the interval           element-wise sum
``cumulative_histogram``    bucket counts / sum / count since ``start_ns``        latest row
==========================  ====================================================  =================

Derived series (span metrics, service graph, log counts) are written as deltas of one
aggregation interval by every receiver process, so rows of several processes for the same
series and interval simply add up at query time. Histogram ``buckets`` hold per-bucket (not
cumulative) counts: ``len(buckets) == len(bounds) + 1``, the last one being ``+Inf``. A
bucket ``i`` counts values ``<= bounds[i]`` (Prometheus ``le``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

import pyarrow as pa

from spanlake.model import fingerprint

GAUGE = "gauge"
DELTA = "delta"
CUMULATIVE = "cumulative"
DELTA_HISTOGRAM = "delta_histogram"
CUMULATIVE_HISTOGRAM = "cumulative_histogram"
KINDS = (GAUGE, DELTA, CUMULATIVE, DELTA_HISTOGRAM, CUMULATIVE_HISTOGRAM)
HISTOGRAM_KINDS = (DELTA_HISTOGRAM, CUMULATIVE_HISTOGRAM)
SUMMED_KINDS = (DELTA, DELTA_HISTOGRAM)  # rows add up within a step; the others keep the latest

#: One exemplar: the bucket it belongs to (-1 for a non-histogram), its value and time, and the
#: span it came from (lowercase hex; empty when the exemplar carries no span).
EXEMPLAR_TYPE = pa.struct(
    [
        ("bucket", pa.int32()),
        ("value", pa.float64()),
        ("time_ns", pa.int64()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
    ]
)

LABELS_TYPE = pa.map_(pa.string(), pa.string())

SAMPLE_SCHEMA = pa.schema(
    [
        ("metric", pa.string()),
        ("series_id", pa.uint64()),  # series_fingerprint(metric, labels)
        ("labels", LABELS_TYPE),
        ("kind", pa.string()),
        ("monotonic", pa.bool_()),
        ("time_ns", pa.int64()),
        ("start_ns", pa.int64()),  # start of a cumulative series (OTLP start_time_unix_nano), else 0
        ("value", pa.float64()),  # gauge / counter value, histogram sum (NaN when not sent)
        ("count", pa.float64()),  # histogram count, null for the other kinds
        ("bounds", pa.list_(pa.float64())),  # histogram upper bounds, null for the other kinds
        ("buckets", pa.list_(pa.float64())),  # per-bucket counts, one more than bounds
        ("exemplars", pa.list_(EXEMPLAR_TYPE)),
    ]
)


def series_fingerprint(metric: str, labels: Mapping[str, str]) -> int:
    """64-bit id of a series: the metric name and its sorted label pairs."""
    flat = [metric]
    for k in sorted(labels):
        flat.append(k)
        flat.append(labels[k])
    return fingerprint(flat)


@dataclass
class SampleBatch:
    """Samples for the store: one Arrow table of :data:`SAMPLE_SCHEMA`."""

    table: pa.Table

    @property
    def num_samples(self) -> int:
        return self.table.num_rows

    @staticmethod
    def empty() -> "SampleBatch":
        return SampleBatch(SAMPLE_SCHEMA.empty_table())

    @staticmethod
    def concat(batches: Sequence["SampleBatch"]) -> "SampleBatch":
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return SampleBatch.empty()
        return SampleBatch(pa.concat_tables([b.table for b in batches]))


class ExemplarRow(NamedTuple):
    """An exemplar to store (a tuple, so that Arrow takes it as a struct as it is)."""

    bucket: int
    value: float
    time_ns: int
    trace_id: str = ""
    span_id: str = ""


class SampleRows:
    """Row-by-row builder of a :class:`SampleBatch` (aggregators emit a few hundred rows a flush)."""

    def __init__(self) -> None:
        self._cols: dict[str, list] = {name: [] for name in SAMPLE_SCHEMA.names}

    def __len__(self) -> int:
        return len(self._cols["metric"])

    def add(
        self,
        metric: str,
        labels: Mapping[str, str],
        kind: str,
        time_ns: int,
        value: float,
        *,
        monotonic: bool = False,
        start_ns: int = 0,
        count: float | None = None,
        bounds: Sequence[float] | None = None,
        buckets: Sequence[float] | None = None,
        exemplars: Iterable[ExemplarRow] = (),
    ) -> None:
        c = self._cols
        c["metric"].append(metric)
        c["series_id"].append(series_fingerprint(metric, labels))
        c["labels"].append(list(labels.items()))
        c["kind"].append(kind)
        c["monotonic"].append(monotonic)
        c["time_ns"].append(int(time_ns))
        c["start_ns"].append(int(start_ns))
        c["value"].append(float(value))
        c["count"].append(None if count is None else float(count))
        c["bounds"].append(None if bounds is None else [float(b) for b in bounds])
        c["buckets"].append(None if buckets is None else [float(b) for b in buckets])
        c["exemplars"].append(list(exemplars) or None)

    def batch(self) -> SampleBatch:
        return SampleBatch(pa.table(self._cols, schema=SAMPLE_SCHEMA))


# ---------------------------------------------------------------------------------------------
# Series derived at ingest
# ---------------------------------------------------------------------------------------------

#: The spanmetrics connector's default duration buckets, in milliseconds (+Inf implicit).
SPAN_DURATION_BOUNDS_MS = (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000)
#: The servicegraph connector's default latency buckets, in seconds.
SERVICE_GRAPH_BOUNDS_S = tuple(b / 1000 for b in SPAN_DURATION_BOUNDS_MS)

SPAN_KIND_LABELS = {
    0: "SPAN_KIND_UNSPECIFIED",
    1: "SPAN_KIND_INTERNAL",
    2: "SPAN_KIND_SERVER",
    3: "SPAN_KIND_CLIENT",
    4: "SPAN_KIND_PRODUCER",
    5: "SPAN_KIND_CONSUMER",
}
STATUS_CODE_LABELS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}
#: Log severity number ranges (OTLP logs data model) -> the ``severity`` label.
SEVERITY_RANGES = ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (21, "FATAL"))

#: Label of the series that collects every label set past the cardinality limit.
OVERFLOW_LABEL = "otel_metric_overflow"


@dataclass(frozen=True)
class DerivedMetric:
    """A series family Spanlake derives at ingest and serves on ``/metrics``."""

    name: str  # as stored and as Prometheus shows it (counters end in _total)
    kind: str  # DELTA or DELTA_HISTOGRAM
    help: str
    bounds: tuple[float, ...] = ()

    @property
    def family(self) -> str:
        """The name without the ``_total`` suffix (what a Prometheus client library takes)."""
        return self.name[: -len("_total")] if self.name.endswith("_total") else self.name


SPAN_CALLS = DerivedMetric(
    "traces_span_metrics_calls_total", DELTA, "Spans received, by service, span name, kind and status."
)
SPAN_DURATION = DerivedMetric(
    "traces_span_metrics_duration_milliseconds", DELTA_HISTOGRAM,
    "Span durations in milliseconds, by service, span name, kind and status.", SPAN_DURATION_BOUNDS_MS,
)
SERVICE_GRAPH_REQUESTS = DerivedMetric(
    "traces_service_graph_request_total", DELTA, "Requests between two services (client/server or producer/consumer)."
)
SERVICE_GRAPH_FAILED = DerivedMetric(
    "traces_service_graph_request_failed_total", DELTA, "Requests between two services where either side failed."
)
SERVICE_GRAPH_SERVER = DerivedMetric(
    "traces_service_graph_request_server_seconds", DELTA_HISTOGRAM,
    "Request duration measured by the server (or consumer) side, in seconds.", SERVICE_GRAPH_BOUNDS_S,
)
SERVICE_GRAPH_CLIENT = DerivedMetric(
    "traces_service_graph_request_client_seconds", DELTA_HISTOGRAM,
    "Request duration measured by the client (or producer) side, in seconds.", SERVICE_GRAPH_BOUNDS_S,
)
SERVICE_GRAPH_UNPAIRED = DerivedMetric(
    "traces_service_graph_unpaired_spans_total", DELTA,
    "Client or server spans whose other half did not arrive within the service-graph wait.",
)
SERVICE_GRAPH_DROPPED = DerivedMetric(
    "traces_service_graph_dropped_spans_total", DELTA,
    "Client or server spans dropped because the store of unpaired halves was full.",
)
LOG_RECORDS = DerivedMetric("spanlake_log_records_total", DELTA, "Log records received, by service and severity.")

DERIVED_METRICS: tuple[DerivedMetric, ...] = (
    SPAN_CALLS,
    SPAN_DURATION,
    SERVICE_GRAPH_REQUESTS,
    SERVICE_GRAPH_FAILED,
    SERVICE_GRAPH_SERVER,
    SERVICE_GRAPH_CLIENT,
    SERVICE_GRAPH_UNPAIRED,
    SERVICE_GRAPH_DROPPED,
    LOG_RECORDS,
)


def severity_label(number: int) -> str:
    """``severity`` label of an OTLP severity number (0 or out of range: UNSPECIFIED)."""
    if not 1 <= number <= 24:
        return "UNSPECIFIED"
    return SEVERITY_RANGES[(number - 1) // 4][1]


# ---------------------------------------------------------------------------------------------
# Prometheus names
# ---------------------------------------------------------------------------------------------

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")

_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes",
    "GiBy": "gibibytes", "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes",
    "TBy": "terabytes", "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts",
    "g": "grams", "Cel": "celsius", "Hz": "hertz", "%": "percent",
}
_PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}


def label_name(key: str) -> str:
    """Prometheus label name of an attribute key: ``service.name`` -> ``service_name``."""
    name = _INVALID.sub("_", key) or "_"
    if name[0].isdigit():
        name = "key_" + name
    return name


def _unit_suffix(unit: str) -> str:
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if not unit or unit == "1":
        return ""
    main, _, per = unit.partition("/")
    words = [_UNITS.get(main, main)] if main else []
    if per:
        words.append("per_" + _PER_UNITS.get(per, per))
    return _INVALID.sub("_", "_".join(words)).strip("_")


def prometheus_metric_name(name: str, unit: str, *, counter: bool, gauge: bool = False) -> str:
    """The name Prometheus gives an OTLP metric: sanitised, with unit suffix and ``_total``.

    ``http.server.request.duration`` in ``s`` -> ``http_server_request_duration_seconds``; a
    monotonic sum ``http.server.requests`` -> ``http_server_requests_total``; a gauge in ``1``
    -> ``..._ratio``.
    """
    out = _UNDERSCORES.sub("_", _INVALID.sub("_", name)).strip("_") or "metric"
    if out[0].isdigit():
        out = "_" + out
    suffix = _unit_suffix(unit)
    if suffix and not out.endswith("_" + suffix) and out != suffix:
        out += "_" + suffix
    if gauge and unit.strip() == "1" and not out.endswith("_ratio"):
        out += "_ratio"
    if counter and not out.endswith("_total"):
        out += "_total"
    return out
