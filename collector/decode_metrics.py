"""Decode OTLP metric export requests (protobuf or OTLP/JSON) into a :class:`SampleBatch`.

Metrics arrive at a small fraction of the span volume (an SDK exports every few seconds), so
the request is parsed with the official classes and walked point by point.

Every data point becomes one row per series with the resource attributes and then the point
attributes as labels (the point wins a name clash), names as Prometheus gives them (see
:func:`~spanlake.metrics_model.prometheus_metric_name`):

* gauges -> ``gauge``; monotonic sums -> ``delta`` or ``cumulative`` by temporality, named
  ``..._total``; non-monotonic sums -> ``delta`` (delta temporality) or ``gauge`` (cumulative,
  as Prometheus treats UpDownCounters);
* explicit-bucket histograms -> ``delta_histogram`` / ``cumulative_histogram``;
* exponential histograms are stored as explicit-bucket histograms whose bounds are the
  exponential bucket boundaries (exact for the positive buckets; a negative bucket's closed
  end moves to the other side);
* summaries -> a ``gauge`` per quantile (label ``quantile``) plus ``<name>_sum`` and
  ``<name>_count`` as cumulative counters, as Prometheus shows them.

Points flagged "no recorded value" carry nothing to store and are skipped. A point that is
invalid (no time, histogram buckets that do not fit the bounds, unspecified temporality, no
value) is rejected on its own and named in the partial-success message; a request that cannot
be parsed raises :class:`DecodeError`.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Iterable

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from spanlake.collector.decode_common import DecodeError
from spanlake.collector.otlp_json import hex_ids_to_proto_json
from spanlake.metrics_model import (
    CUMULATIVE,
    CUMULATIVE_HISTOGRAM,
    DELTA,
    DELTA_HISTOGRAM,
    GAUGE,
    ExemplarRow,
    SampleBatch,
    SampleRows,
    label_name,
    prometheus_metric_name,
)
from spanlake.model import encode_proto_any_value, string_form

__all__ = ["DecodeError", "MetricDecodeResult", "decode_metrics_json", "decode_metrics_protobuf"]

_DELTA_T = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
_CUMULATIVE_T = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
_NO_RECORDED_VALUE = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_MAX_PROBLEMS = 5


@dataclass
class MetricDecodeResult:
    batch: SampleBatch
    accepted: int = 0  # data points stored
    rejected: int = 0  # data points refused
    error_message: str = ""


class _Invalid(Exception):
    """One data point (or a whole metric) is invalid; the message says why."""


@dataclass
class _Decoder:
    rows: SampleRows = field(default_factory=SampleRows)
    accepted: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def reject(self, n: int, where: str, why: str) -> None:
        self.rejected += n
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(f"{where}: {why}")
        elif len(self.problems) == _MAX_PROBLEMS:
            self.problems.append("...")

    def result(self) -> MetricDecodeResult:
        message = ""
        if self.problems:
            message = f"{self.rejected} data point(s) rejected: " + "; ".join(self.problems)
        return MetricDecodeResult(self.rows.batch(), self.accepted, self.rejected, message)


def decode_metrics_protobuf(data: bytes) -> MetricDecodeResult:
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(data)
    except (ProtoDecodeError, RuntimeError) as e:
        raise DecodeError(f"request is not a valid OTLP metrics request: {e}") from None
    return decode_request(request)


def decode_metrics_json(data: bytes | str) -> MetricDecodeResult:
    """OTLP/JSON: hex exemplar ids, names in either spelling, unknown fields ignored."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DecodeError(f"request is not valid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise DecodeError("request: not an object")
    hex_ids_to_proto_json(doc)  # an exemplar id that is not hex is dropped with its exemplar's span link
    try:
        request = json_format.ParseDict(doc, ExportMetricsServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise DecodeError(f"request is not a valid OTLP/JSON metrics request: {e}") from None
    return decode_request(request)


def decode_request(request: ExportMetricsServiceRequest) -> MetricDecodeResult:
    d = _Decoder()
    for r, rm in enumerate(request.resource_metrics):
        resource = _labels(rm.resource.attributes)
        for s, sm in enumerate(rm.scope_metrics):
            for m, metric in enumerate(sm.metrics):
                where = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}] ({metric.name or 'no name'})"
                _metric(d, metric, resource, where)
    return d.result()


def _labels(attributes: Iterable[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in attributes:
        value = string_form(encode_proto_any_value(kv.value))
        if value == "":
            continue  # Prometheus drops empty labels
        name = label_name(kv.key)
        out[name] = f"{out[name]};{value}" if name in out else value
    return out


def _metric(d: _Decoder, metric: Any, resource: dict[str, str], where: str) -> None:
    data = metric.WhichOneof("data")
    if data is None:
        d.reject(0, where, "metric has no data (gauge, sum, histogram, exponential histogram or summary)")
        return
    points = getattr(metric, data).data_points
    if not metric.name:
        d.reject(len(points), where, "metric name is empty")
        return
    temporality = getattr(getattr(metric, data), "aggregation_temporality", _CUMULATIVE_T)
    if temporality not in (_DELTA_T, _CUMULATIVE_T):
        d.reject(len(points), where, "aggregation temporality is unspecified")
        return
    delta = temporality == _DELTA_T
    for p, point in enumerate(points):
        if point.flags & _NO_RECORDED_VALUE:
            continue
        try:
            if not point.time_unix_nano:
                raise _Invalid("time_unix_nano is missing")
            labels = {**resource, **_labels(point.attributes)}
            if data == "gauge":
                _number(d, prometheus_metric_name(metric.name, metric.unit, counter=False, gauge=True),
                        labels, GAUGE, False, point)
            elif data == "sum":
                monotonic = metric.sum.is_monotonic
                name = prometheus_metric_name(metric.name, metric.unit, counter=monotonic)
                kind = DELTA if delta else (CUMULATIVE if monotonic else GAUGE)
                _number(d, name, labels, kind, monotonic, point)
            elif data == "histogram":
                _explicit(d, prometheus_metric_name(metric.name, metric.unit, counter=False), labels, delta, point)
            elif data == "exponential_histogram":
                _exponential(d, prometheus_metric_name(metric.name, metric.unit, counter=False), labels, delta, point)
            else:
                _summary(d, prometheus_metric_name(metric.name, metric.unit, counter=False), labels, point)
        except _Invalid as e:
            d.reject(1, f"{where}.dataPoints[{p}]", str(e))
            continue
        d.accepted += 1


def _number_value(point: Any) -> float:
    which = point.WhichOneof("value")
    if which is None:
        raise _Invalid("data point has no value")
    return float(getattr(point, which))


def _exemplars(point: Any, bounds: list[float] | None) -> list[ExemplarRow]:
    out = []
    for e in point.exemplars:
        which = e.WhichOneof("value")
        value = float(getattr(e, which)) if which else math.nan
        bucket = bisect_left(bounds, value) if bounds is not None and not math.isnan(value) else -1
        out.append(ExemplarRow(
            bucket, value, int(e.time_unix_nano),
            e.trace_id.hex() if len(e.trace_id) == 16 else "",
            e.span_id.hex() if len(e.span_id) == 8 else "",
        ))
    return out


def _number(d: _Decoder, name: str, labels: dict[str, str], kind: str, monotonic: bool, point: Any) -> None:
    value = _number_value(point)
    d.rows.add(name, labels, kind, point.time_unix_nano, value, monotonic=monotonic,
               start_ns=point.start_time_unix_nano, exemplars=_exemplars(point, None))


def _check_bounds(bounds: list[float]) -> None:
    if any(not math.isfinite(b) for b in bounds) or any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise _Invalid("histogram bounds are not finite and strictly increasing")


def _explicit(d: _Decoder, name: str, labels: dict[str, str], delta: bool, point: Any) -> None:
    bounds = list(point.explicit_bounds)
    buckets = [float(c) for c in point.bucket_counts]
    _check_bounds(bounds)
    if not buckets:
        bounds, buckets = [], [float(point.count)]  # only the +Inf bucket is known
    elif len(buckets) != len(bounds) + 1:
        raise _Invalid(f"{len(buckets)} bucket counts for {len(bounds)} bounds (need one more count than bounds)")
    _histogram(d, name, labels, delta, point, bounds, buckets)


def _histogram(d: _Decoder, name: str, labels: dict[str, str], delta: bool, point: Any,
               bounds: list[float], buckets: list[float]) -> None:
    total = point.sum if point.HasField("sum") else math.nan
    d.rows.add(name, labels, DELTA_HISTOGRAM if delta else CUMULATIVE_HISTOGRAM, point.time_unix_nano, total,
               monotonic=True, start_ns=point.start_time_unix_nano, count=float(point.count), bounds=bounds,
               buckets=buckets, exemplars=_exemplars(point, bounds))


def _exponential(d: _Decoder, name: str, labels: dict[str, str], delta: bool, point: Any) -> None:
    if not -10 <= point.scale <= 20:
        raise _Invalid(f"exponential histogram scale {point.scale} is out of range (-10..20)")
    base = 2.0 ** (2.0 ** -point.scale)
    neg, pos = point.negative, point.positive
    bounds: list[float] = []
    buckets: list[float] = []
    # Negative bucket k holds [-base^(offset+k+1), -base^(offset+k)); most negative first.
    for k in range(len(neg.bucket_counts) - 1, -1, -1):
        bounds.append(-(base ** (neg.offset + k)))
        buckets.append(float(neg.bucket_counts[k]))
    bounds.append(point.zero_threshold)
    buckets.append(float(point.zero_count))
    # Positive bucket k holds (base^(offset+k), base^(offset+k+1)].
    for k, c in enumerate(pos.bucket_counts):
        bounds.append(base ** (pos.offset + k + 1))
        buckets.append(float(c))
    buckets.append(0.0)  # +Inf
    try:
        _check_bounds(bounds)
    except _Invalid:
        raise _Invalid("exponential histogram buckets overflow or overlap the zero bucket") from None
    _histogram(d, name, labels, delta, point, bounds, buckets)


def _summary(d: _Decoder, name: str, labels: dict[str, str], point: Any) -> None:
    t, start = point.time_unix_nano, point.start_time_unix_nano
    for q in point.quantile_values:
        d.rows.add(name, {**labels, "quantile": _format_quantile(q.quantile)}, GAUGE, t, q.value)
    d.rows.add(name + "_sum", labels, CUMULATIVE, t, point.sum, monotonic=True, start_ns=start)
    d.rows.add(name + "_count", labels, CUMULATIVE, t, float(point.count), monotonic=True, start_ns=start)


def _format_quantile(q: float) -> str:
    return repr(float(q)) if not float(q).is_integer() else str(int(q))
