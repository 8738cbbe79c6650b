"""OTLP metrics requests -> sample rows: conformance bodies, every point type, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from spanlake.collector.decode_metrics import DecodeError, decode_metrics_json, decode_metrics_protobuf
from spanlake.metrics_model import prometheus_metric_name
from tests.e2e.otlp_builders import kv

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "otlp"
T = 1_790_000_000_000_000_000


def _rows(result) -> list[dict]:
    rows = result.batch.table.to_pylist()
    for r in rows:
        r["labels"] = dict(r["labels"])
    return rows


def _request(*metrics: pb.Metric, resource: dict | None = None) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend([kv(k, v) for k, v in (resource or {"service.name": "svc"}).items()])
    rm.scope_metrics.add().metrics.extend(metrics)
    return req


def test_python_sdk_bodies() -> None:
    for name in ("006-metrics.json", "007-metrics.json"):
        result = decode_metrics_json((CONFORMANCE / "python-sdk" / name).read_bytes())
        assert (result.accepted, result.rejected, result.error_message) == (2, 0, "")
        counter, histogram = _rows(result)
        labels = {"service_name": "orders-api", "http_route": "/orders/{id}", "telemetry_sdk_language": "python",
                  "telemetry_sdk_name": "opentelemetry", "telemetry_sdk_version": "1.45.1",
                  "service_instance_id": "dd9f7f47-4833-4396-b5bd-eb82aea46d60"}
        assert counter["metric"] == "http_server_requests_total"
        assert (counter["kind"], counter["monotonic"], counter["value"], counter["labels"]) == ("cumulative", True, 3.0, labels)
        assert counter["start_ns"] == 1795877429329065256 < counter["time_ns"]
        assert histogram["metric"] == "http_server_request_duration_seconds"
        assert histogram["kind"] == "cumulative_histogram"
        assert histogram["count"] == 3 and histogram["value"] == pytest.approx(0.036)
        assert histogram["bounds"][:3] == [0.0, 5.0, 10.0] and histogram["buckets"][:3] == [0.0, 3.0, 0.0]
        assert len(histogram["buckets"]) == len(histogram["bounds"]) + 1
    with_exemplars = _rows(decode_metrics_json((CONFORMANCE / "python-sdk" / "006-metrics.json").read_bytes()))
    assert with_exemplars[0]["exemplars"] == [{"bucket": -1, "value": 1.0, "time_ns": 1795877429342726735,
                                               "trace_id": "c52c279a56f4ccab70e93af10d1d31a5",
                                               "span_id": "a1a0ea3fd47bb628"}]
    assert with_exemplars[1]["exemplars"][0]["bucket"] == 1  # 0.012 s falls in (0, 5]


def test_proto_examples_body_keeps_every_type() -> None:
    result = decode_metrics_json((CONFORMANCE / "proto-examples" / "metrics.json").read_bytes())
    assert (result.accepted, result.rejected) == (4, 0)
    rows = {r["metric"]: r for r in _rows(result)}
    assert rows["my_counter_total"]["kind"] == "delta" and rows["my_counter_total"]["value"] == 5
    assert rows["my_counter_total"]["labels"] == {"service_name": "my.service", "my_counter_attr": "some value"}
    assert rows["my_gauge_ratio"]["kind"] == "gauge" and rows["my_gauge_ratio"]["value"] == 10
    h = rows["my_histogram"]
    assert (h["kind"], h["count"], h["value"], h["bounds"], h["buckets"]) == ("delta_histogram", 2, 2, [1.0], [1.0, 1.0])
    # scale 0, offset 1, counts [0, 2]: buckets (2, 4] and (4, 8]; zero bucket [0, 0] holds 1
    e = rows["my_exponential_histogram"]
    assert (e["kind"], e["count"], e["value"]) == ("delta_histogram", 3, 10)
    assert e["bounds"] == [0.0, 4.0, 8.0] and e["buckets"] == [1.0, 0.0, 2.0, 0.0]


def test_protobuf_and_json_decode_alike() -> None:
    doc = (CONFORMANCE / "proto-examples" / "metrics.json").read_text()
    from google.protobuf import json_format

    req = json_format.Parse(doc, ExportMetricsServiceRequest())
    assert _rows(decode_metrics_protobuf(req.SerializeToString())) == _rows(decode_metrics_json(doc))


def _sum(monotonic: bool, temporality: int, value: float = 1.0) -> pb.Metric:
    m = pb.Metric(name="jobs.done", unit="{job}")
    m.sum.is_monotonic = monotonic
    m.sum.aggregation_temporality = temporality
    m.sum.data_points.add(time_unix_nano=T, start_time_unix_nano=T - 10, as_int=int(value))
    return m


@pytest.mark.parametrize(
    "monotonic,temporality,name,kind",
    [
        (True, pb.AGGREGATION_TEMPORALITY_CUMULATIVE, "jobs_done_total", "cumulative"),
        (True, pb.AGGREGATION_TEMPORALITY_DELTA, "jobs_done_total", "delta"),
        (False, pb.AGGREGATION_TEMPORALITY_DELTA, "jobs_done", "delta"),
        (False, pb.AGGREGATION_TEMPORALITY_CUMULATIVE, "jobs_done", "gauge"),
    ],
)
def test_sums_by_monotonicity_and_temporality(monotonic, temporality, name, kind) -> None:
    (row,) = _rows(decode_metrics_protobuf(_request(_sum(monotonic, temporality)).SerializeToString()))
    assert (row["metric"], row["kind"], row["monotonic"], row["start_ns"]) == (name, kind, monotonic, T - 10)


def test_point_attributes_win_over_resource_attributes() -> None:
    m = pb.Metric(name="g")
    p = m.gauge.data_points.add(time_unix_nano=T, as_double=1.5)
    p.attributes.extend([kv("host.name", "point"), kv("empty", "")])
    (row,) = _rows(decode_metrics_protobuf(_request(m, resource={"service.name": "s", "host.name": "res"}).SerializeToString()))
    assert row["labels"] == {"service_name": "s", "host_name": "point"}


def test_summary_becomes_quantile_gauges_sum_and_count() -> None:
    m = pb.Metric(name="rpc.latency", unit="ms")
    p = m.summary.data_points.add(time_unix_nano=T, start_time_unix_nano=T - 5, count=10, sum=123.0)
    p.quantile_values.add(quantile=0.5, value=11.0)
    p.quantile_values.add(quantile=0.99, value=40.0)
    rows = _rows(decode_metrics_protobuf(_request(m).SerializeToString()))
    got = {(r["metric"], r["labels"].get("quantile"), r["kind"]): r["value"] for r in rows}
    assert got == {
        ("rpc_latency_milliseconds", "0.5", "gauge"): 11.0,
        ("rpc_latency_milliseconds", "0.99", "gauge"): 40.0,
        ("rpc_latency_milliseconds_sum", None, "cumulative"): 123.0,
        ("rpc_latency_milliseconds_count", None, "cumulative"): 10.0,
    }


def test_exponential_histogram_with_negative_buckets() -> None:
    m = pb.Metric(name="temp")
    m.exponential_histogram.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_CUMULATIVE
    p = m.exponential_histogram.data_points.add(time_unix_nano=T, count=6, sum=1.0, scale=1, zero_count=1)
    p.positive.offset = 0
    p.positive.bucket_counts.extend([2, 1])  # (1, 1.414], (1.414, 2]
    p.negative.offset = 1
    p.negative.bucket_counts.extend([1, 1])  # [-2, -1.414), [-2.83, -2)
    (row,) = _rows(decode_metrics_protobuf(_request(m).SerializeToString()))
    b = math.sqrt(2)
    assert row["kind"] == "cumulative_histogram"
    assert row["bounds"] == pytest.approx([-2.0, -b, 0.0, b, 2.0])
    assert row["buckets"] == [1.0, 1.0, 1.0, 2.0, 1.0, 0.0]


def test_invalid_points_are_rejected_one_by_one_with_reasons() -> None:
    unspecified = _sum(True, pb.AGGREGATION_TEMPORALITY_UNSPECIFIED)
    no_time = pb.Metric(name="g")
    no_time.gauge.data_points.add(as_double=1)
    no_time.gauge.data_points.add(time_unix_nano=T, as_double=2)
    bad_buckets = pb.Metric(name="h")
    bad_buckets.histogram.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_DELTA
    bad_buckets.histogram.data_points.add(time_unix_nano=T, count=2, explicit_bounds=[1, 2], bucket_counts=[1, 1])
    unsorted = pb.Metric(name="h2")
    unsorted.histogram.aggregation_temporality = pb.AGGREGATION_TEMPORALITY_DELTA
    unsorted.histogram.data_points.add(time_unix_nano=T, count=1, explicit_bounds=[2, 1], bucket_counts=[1, 0, 0])
    no_value = pb.Metric(name="g2")
    no_value.gauge.data_points.add(time_unix_nano=T)
    stale = pb.Metric(name="g3")
    stale.gauge.data_points.add(time_unix_nano=T, flags=pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)
    nodata = pb.Metric(name="empty")
    result = decode_metrics_protobuf(
        _request(unspecified, no_time, bad_buckets, unsorted, no_value, stale, nodata).SerializeToString()
    )
    assert (result.accepted, result.rejected) == (1, 5)
    assert [r["metric"] for r in _rows(result)] == ["g"]
    msg = result.error_message
    assert msg.startswith("5 data point(s) rejected: ")
    for needle in ("aggregation temporality is unspecified", "time_unix_nano is missing",
                   "2 bucket counts for 2 bounds", "strictly increasing", "data point has no value"):
        assert needle in msg
    assert msg.endswith("; ...")  # the message names the first five problems
    alone = decode_metrics_protobuf(_request(nodata).SerializeToString())
    assert (alone.accepted, alone.rejected) == (0, 0)
    assert "metrics[0] (empty): metric has no data" in alone.error_message


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05\x0a"])
def test_undecodable_protobuf(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_metrics_protobuf(body)


@pytest.mark.parametrize("body", [b"{", b"[]", json.dumps({"resourceMetrics": [{"scopeMetrics": "x"}]}).encode()])
def test_undecodable_json(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_metrics_json(body)


def test_bad_exemplar_ids_only_lose_the_link() -> None:
    doc = json.loads((CONFORMANCE / "python-sdk" / "006-metrics.json").read_text())
    ex = doc["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]["exemplars"][0]
    ex["traceId"] = "not-hex"
    result = decode_metrics_json(json.dumps(doc))
    assert result.rejected == 0
    assert _rows(result)[0]["exemplars"][0]["trace_id"] == ""


@pytest.mark.parametrize(
    "name,unit,counter,gauge,expected",
    [
        ("http.server.request.duration", "s", False, False, "http_server_request_duration_seconds"),
        ("http.server.requests", "{request}", True, False, "http_server_requests_total"),
        ("system.memory.usage", "By", False, False, "system_memory_usage_bytes"),
        ("throughput", "By/s", False, False, "throughput_bytes_per_second"),
        ("cpu.utilization", "1", False, True, "cpu_utilization_ratio"),
        ("requests_total", "1", True, False, "requests_total"),
        ("latency_seconds", "s", False, False, "latency_seconds"),
        ("2xx.count", "", True, False, "_2xx_count_total"),
    ],
)
def test_prometheus_names(name, unit, counter, gauge, expected) -> None:
    assert prometheus_metric_name(name, unit, counter=counter, gauge=gauge) == expected
