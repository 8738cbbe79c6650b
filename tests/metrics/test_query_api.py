"""The metrics APIs in process over a memory store: Jaeger's Monitor API, the series API and
/metrics (Prometheus text and OpenMetrics, parsed back with prometheus_client)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from spanlake.config import load_config
from spanlake.metrics_model import (
    CUMULATIVE,
    DELTA,
    DELTA_HISTOGRAM,
    SPAN_CALLS,
    SPAN_DURATION,
    SPAN_DURATION_BOUNDS_MS,
    ExemplarRow,
    SampleRows,
)
from spanlake.query.api.app import create_app
from spanlake.storage.memory import MemoryStore

SEC = 1_000_000_000
RES = 15 * SEC
T0 = 1_790_000_100 * SEC // (300 * SEC) * (300 * SEC)
INTERVALS = 40  # ten minutes
WIDTH = len(SPAN_DURATION_BOUNDS_MS) + 1


def _labels(service: str, name: str, kind: str = "SPAN_KIND_SERVER", status: str = "STATUS_CODE_UNSET") -> dict:
    return {"service_name": service, "span_name": name, "span_kind": kind, "status_code": status}


def _hist(rows: SampleRows, labels: dict, t: int, bucket: int, n: int, each_ms: float, trace: str = "") -> None:
    buckets = [0] * WIDTH
    buckets[bucket] = n
    ex = [ExemplarRow(bucket, each_ms, t + 1, trace, "ab" * 8)] if trace else []
    rows.add(SPAN_DURATION.name, labels, DELTA_HISTOGRAM, t, n * each_ms, monotonic=True, count=n,
             bounds=SPAN_DURATION_BOUNDS_MS, buckets=buckets, exemplars=ex)


def _fill(store: MemoryStore, writers: int = 1) -> None:
    for _ in range(writers):
        rows = SampleRows()
        for i in range(INTERVALS):
            t = T0 + i * RES
            for labels, n in ((_labels("cart", "GET /a"), 3), (_labels("cart", "GET /a", status="STATUS_CODE_ERROR"), 1),
                              (_labels("cart", "GET /b"), 2), (_labels("cart", "SELECT", "SPAN_KIND_CLIENT"), 5),
                              (_labels("shop", "GET /"), 6)):
                rows.add(SPAN_CALLS.name, labels, DELTA, t, n, monotonic=True)
            _hist(rows, _labels("cart", "GET /a"), t, 1, 4, 3.0, trace=f"{i:032x}")
            _hist(rows, _labels("cart", "GET /b"), t, 5, 2, 20.0)
        store.write_samples(rows.batch()).result()


@pytest.fixture
def client() -> Iterator[TestClient]:
    store = MemoryStore()
    _fill(store)
    with TestClient(create_app(load_config(), store)) as c:
        yield c
    store.close()


def _red(client: TestClient, path: str, **params) -> dict:
    base = {"service": "cart", "endTs": (T0 + 600 * SEC) // 1_000_000, "lookback": 300_000, "step": 60_000,
            "ratePer": 60_000}
    r = client.get(f"/api/metrics/{path}", params={**base, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _values(family: dict) -> dict[tuple, list[float]]:
    return {tuple((l["name"], l["value"]) for l in m["labels"]): [p["gaugeValue"]["doubleValue"] for p in m["metricPoints"]]
            for m in family["metrics"]}


def test_jaeger_calls(client: TestClient) -> None:
    fam = _red(client, "calls", service=["cart", "shop"])
    assert (fam["name"], fam["type"], fam["help"]) == ("service_call_rate", "GAUGE", "calls/sec, grouped by service")
    # 4 intervals end in each 60 s window: cart server spans 6 a interval, shop 6
    assert _values(fam) == {(("service_name", "cart"),): [0.4] * 6, (("service_name", "shop"),): [0.4] * 6}
    points = fam["metrics"][0]["metricPoints"]
    first = datetime.fromtimestamp((T0 + 300 * SEC) // SEC, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert points[0]["timestamp"] == first and len(points) == 6
    client_kind = _values(_red(client, "calls", spanKind="client"))
    assert client_kind == {(("service_name", "cart"),): [pytest.approx(20 / 60)] * 6}


def test_jaeger_errors_and_zero_error_rates(client: TestClient) -> None:
    fam = _red(client, "errors", service=["cart", "shop"])
    assert fam["name"] == "service_error_rate"
    assert _values(fam) == {(("service_name", "cart"),): [pytest.approx(1 / 6)] * 6, (("service_name", "shop"),): [0.0] * 6}
    by_op = _red(client, "errors", groupByOperation="true")
    assert by_op["name"] == "service_operation_error_rate" and by_op["help"].endswith("& operation")
    assert _values(by_op) == {(("service_name", "cart"), ("operation", "GET /a")): [0.25] * 6,
                              (("service_name", "cart"), ("operation", "GET /b")): [0.0] * 6}


def test_jaeger_latencies(client: TestClient) -> None:
    fam = _red(client, "latencies", quantile=0.5)
    assert (fam["name"], fam["help"]) == ("service_latencies", "0.50th quantile latency, grouped by service")
    # per window: 16 observations in (2, 4] and 8 in (10, 50]: rank 12 lies 3/4 into (2, 4]
    assert _values(fam) == {(("service_name", "cart"),): [3.5] * 6}
    by_op = _values(_red(client, "latencies", quantile=0.95, groupByOperation="1"))
    assert by_op[(("service_name", "cart"), ("operation", "GET /b"))] == [pytest.approx(10 + 40 * 0.95)] * 6
    # before the first row and for unknown services there is nothing
    assert _values(_red(client, "latencies", quantile=0.5, endTs=T0 // 1_000_000)) == {}
    assert _values(_red(client, "calls", service="nope")) == {}


@pytest.mark.parametrize(
    "path,params,needle",
    [
        ("calls", {}, "unable to parse param 'service': please provide at least one service name"),
        ("latencies", {"service": "a"}, "unable to parse param 'quantile'"),
        ("latencies", {"service": "a", "quantile": "2"}, "unable to parse param 'quantile'"),
        ("calls", {"service": "a", "spanKind": "sideways"}, "unsupported span kind: 'sideways'"),
        ("calls", {"service": "a", "endTs": "soon"}, "unable to parse param 'endTs'"),
        ("errors", {"service": "a", "groupByOperation": "maybe"}, "unable to parse param 'groupByOperation'"),
        ("calls", {"service": "a", "step": "0"}, "unable to parse param 'step'"),
    ],
)
def test_jaeger_bad_parameters(client: TestClient, path: str, params: dict, needle: str) -> None:
    r = client.get(f"/api/metrics/{path}", params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["data"] is None and body["errors"][0]["code"] == 400 and needle in body["errors"][0]["msg"]


def test_jaeger_minstep(client: TestClient) -> None:
    assert client.get("/api/metrics/minstep").json()["data"] == 15_000


def _series(client: TestClient, **params) -> dict:
    base = {"start": T0, "end": T0 + 600 * SEC, "step": "1m"}
    r = client.get("/api/spanlake/v1/series", params={**base, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_series_increase_rate_and_grouping(client: TestClient) -> None:
    doc = _series(client, metric='traces_span_metrics_calls_total{service_name="cart"}', fn="increase", by="status_code")
    got = {s["labels"]["status_code"]: [v for _, v in s["points"]] for s in doc["series"]}
    assert got == {"STATUS_CODE_UNSET": [40.0] * 10, "STATUS_CODE_ERROR": [4.0] * 10}
    assert doc["series"][0]["points"][0][0] == T0 and doc["step"] == 60 * SEC
    rate = _series(client, metric="traces_span_metrics_calls_total", match=['service_name="shop"'], fn="rate", by="")
    assert [s["labels"] for s in rate["series"]] == [{}] and rate["series"][0]["points"][0][1] == pytest.approx(0.4)
    matched = _series(client, metric="traces_span_metrics_calls_total",
                      match=['span_kind!="SPAN_KIND_CLIENT"', 'span_name=~"GET /.*"', 'service_name!~"shop"'])
    assert sorted(s["labels"]["span_name"] for s in matched["series"]) == ["GET /a", "GET /a", "GET /b"]


def test_series_quantile_raw_histograms_and_exemplars(client: TestClient) -> None:
    q = _series(client, metric="traces_span_metrics_duration_milliseconds", fn="quantile", q=0.5, by="service_name")
    assert [v for _, v in q["series"][0]["points"]] == [3.5] * 10
    raw = _series(client, metric='traces_span_metrics_duration_milliseconds{span_name="GET /a"}', step="5m",
                  exemplars="true")
    (s,) = raw["series"]
    assert s["kind"] == "delta_histogram" and s["counts"] == [80.0, 80.0] and s["buckets"][0][1] == 80.0
    assert s["bounds"] == [float(b) for b in SPAN_DURATION_BOUNDS_MS]
    assert [v for _, v in s["points"]] == [240.0, 240.0]
    assert s["exemplars"][-1] == {"time": T0 + 39 * RES + 1, "value": 3.0, "trace_id": f"{39:032x}", "span_id": "ab" * 8}


def test_series_of_cumulative_otlp_counters() -> None:
    store = MemoryStore()
    rows = SampleRows()
    for i, v in enumerate([10, 20, 35, 5, 15]):  # a restart (reset) after the third point
        start = T0 - SEC if i < 3 else T0 + 40 * SEC
        rows.add("http_requests_total", {"job": "x"}, CUMULATIVE, T0 + i * 15 * SEC, v, monotonic=True, start_ns=start)
    store.write_samples(rows.batch()).result()
    with TestClient(create_app(load_config(), store)) as c:
        doc = c.get("/api/spanlake/v1/series", params={"metric": "http_requests_total", "start": T0,
                                                        "end": T0 + 75 * SEC, "step": "15s", "fn": "increase"}).json()
        assert [v for _, v in doc["series"][0]["points"]] == [0.0, 10.0, 15.0, 5.0, 10.0]
        raw = c.get("/api/spanlake/v1/series", params={"metric": "http_requests_total", "start": T0,
                                                        "end": T0 + 75 * SEC, "step": "15s"}).json()
        assert [v for _, v in raw["series"][0]["points"]] == [10.0, 20.0, 35.0, 5.0, 15.0]


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"metric": "calls{a=b}"}, "bad label matcher"),
        ({"metric": "calls", "match": "a=~\"(\""}, "invalid regular expression"),
        ({"metric": "calls", "fn": "median"}, "fn"),
        ({"metric": "calls", "fn": "quantile"}, "quantile"),
        ({"metric": "calls", "step": "1ms", "start": T0, "end": T0 + 600 * SEC}, "maximum resolution"),
        ({"metric": "{a=\"b\"}"}, "not a metric name"),
    ],
)
def test_series_bad_parameters(client: TestClient, params: dict, needle: str) -> None:
    r = client.get("/api/spanlake/v1/series", params=params)
    assert r.status_code == 400 and needle in r.text


def _families(text: str, parser) -> dict:
    return {f.name: f for f in parser(text)}


def test_metrics_endpoint_in_both_formats_and_summed_over_writers() -> None:
    store = MemoryStore()
    _fill(store, writers=2)  # two receiver processes wrote the same series
    recent = SampleRows()  # exemplars on /metrics come from recent rows
    now = time.time_ns() // RES * RES
    _hist(recent, _labels("cart", "GET /recent"), now - RES, 3, 2, 7.0, trace="f" * 32)
    store.write_samples(recent.batch()).result()
    with TestClient(create_app(load_config(), store)) as c:
        text = c.get("/metrics")
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        fams = _families(text.text, parse_text)
        calls = {tuple(sorted(s.labels.items())): s.value for s in fams["traces_span_metrics_calls"].samples}
        assert calls[tuple(sorted(_labels("cart", "GET /a").items()))] == 2 * 3 * INTERVALS
        assert calls[tuple(sorted(_labels("shop", "GET /").items()))] == 2 * 6 * INTERVALS
        assert fams["traces_span_metrics_calls"].type == "counter"
        duration = fams["traces_span_metrics_duration_milliseconds"]
        assert duration.type == "histogram"
        a = {s.name + s.labels.get("le", ""): s.value for s in duration.samples if s.labels["span_name"] == "GET /a"}
        assert a["traces_span_metrics_duration_milliseconds_bucket2.0"] == 0
        assert a["traces_span_metrics_duration_milliseconds_bucket4.0"] == 2 * 4 * INTERVALS
        assert a["traces_span_metrics_duration_milliseconds_bucket+Inf"] == 2 * 4 * INTERVALS
        assert a["traces_span_metrics_duration_milliseconds_count"] == 2 * 4 * INTERVALS
        assert a["traces_span_metrics_duration_milliseconds_sum"] == 2 * 12 * INTERVALS
        assert "spanlake_receiver_requests" in text.text  # our own metrics are still there
        assert " # {" not in text.text  # no exemplars in the 0.0.4 format

        om = c.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"})
        assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert om.text.endswith("# EOF\n")
        fams = _families(om.text, parse_openmetrics)
        buckets = [s for s in fams["traces_span_metrics_duration_milliseconds"].samples
                   if s.name.endswith("_bucket") and s.exemplar]
        assert [(s.labels["span_name"], s.labels["le"], s.exemplar.labels) for s in buckets] == [
            ("GET /recent", "8.0", {"trace_id": "f" * 32, "span_id": "ab" * 8})]
        assert buckets[0].exemplar.value == 7.0 and buckets[0].value == 2
        assert fams["traces_span_metrics_calls"].type == "counter"
    store.close()


def test_jaeger_long_lookbacks_read_coarser_steps(client: TestClient) -> None:
    fam = _red(client, "calls", lookback=3 * 86_400_000, step=3_600_000, ratePer=600_000)
    assert _values(fam) == {(("service_name", "cart"),): [pytest.approx(0.4)]}
