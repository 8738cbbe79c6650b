"""Metrics through a real ``spanlake serve``: OTel SDK metric exporters (gRPC and HTTP), the
conformance bodies, bad input, and the series derived from spans and logs as /metrics, the
Jaeger Monitor API and the series API show them."""

from __future__ import annotations

import gzip
import json
import os
import time
from bisect import bisect_left

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from spanlake.metrics_model import SPAN_DURATION_BOUNDS_MS, severity_label
from tests.e2e.otlp_builders import make_request
from tests.metrics.builders import CLIENT, CONSUMER, PRODUCER, SERVER, span
from tests.metrics.conftest import CONFORMANCE, FAST, samples, scrape
from tests.server import SpanlakeServer, wait_for

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _send_spans(server: SpanlakeServer, *requests) -> None:
    with grpc.insecure_channel(server.otlp_grpc) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for req in requests:
            stub.Export(req, timeout=30)


def _series(server: SpanlakeServer, metric: str, **params) -> list[dict]:
    r = httpx.get(server.http_url + "/api/spanlake/v1/series",
                  params={"metric": metric, "lookback": "10m", "step": "1m", **params}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["series"]


# -- OTLP metrics in -----------------------------------------------------------------------


def _sdk_exporter(kind: str, server: SpanlakeServer):
    if kind == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=server.otlp_grpc, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=server.otlp_http + "/v1/metrics")


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_sdk_metric_exporters(metrics_server: SpanlakeServer, dump_log, kind: str) -> None:
    from opentelemetry.metrics import Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    dump_log(metrics_server)
    service = f"sdk-metrics-{kind}"
    reader = PeriodicExportingMetricReader(_sdk_exporter(kind, metrics_server), export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": service}), metric_readers=[reader])
    meter = provider.get_meter("acceptance.meter")
    orders = meter.create_counter("orders.placed", unit="{order}")
    orders.add(3, {"region": "eu"})
    orders.add(2, {"region": "us"})
    duration = meter.create_histogram("checkout.duration", unit="ms")
    duration.record(12, {"region": "eu"})
    duration.record(250, {"region": "eu"})
    depth = meter.create_up_down_counter("queue.depth")
    depth.add(5)
    depth.add(-2)
    meter.create_observable_gauge("cpu.temperature", unit="Cel",
                                  callbacks=[lambda _options: [Observation(42.5, {"core": "0"})]])
    assert provider.force_flush(10_000)
    provider.shutdown()

    match = [f'service_name="{service}"']
    placed = {s["labels"]["region"]: (s["kind"], s["points"][-1][1]) for s in _series(metrics_server, "orders_placed_total", match=match)}
    assert placed == {"eu": ("cumulative", 3.0), "us": ("cumulative", 2.0)}
    (hist,) = _series(metrics_server, "checkout_duration_milliseconds", match=match)
    assert hist["kind"] == "cumulative_histogram" and hist["labels"]["region"] == "eu"
    assert hist["counts"][-1] == 2 and hist["points"][-1][1] == 262.0
    bounds = hist["bounds"]
    expected = [0.0] * (len(bounds) + 1)
    for v in (12, 250):
        expected[bisect_left(bounds, v)] += 1
    assert hist["buckets"][-1] == expected
    (queue,) = _series(metrics_server, "queue_depth", match=match)
    assert (queue["kind"], queue["points"][-1][1]) == ("gauge", 3.0)
    (temp,) = _series(metrics_server, "cpu_temperature_celsius", match=match)
    assert (temp["labels"]["core"], temp["points"][-1][1]) == ("0", 42.5)
    assert temp["labels"]["telemetry_sdk_language"] == "python"  # resource attributes are labels


def test_conformance_bodies(metrics_server: SpanlakeServer, dump_log) -> None:
    dump_log(metrics_server)
    for name in ("python-sdk/006-metrics.json", "python-sdk/007-metrics.json", "proto-examples/metrics.json"):
        body = (CONFORMANCE / "otlp" / name).read_bytes()
        r = httpx.post(metrics_server.otlp_http + "/v1/metrics", content=body, headers=JSON, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {}
    window = {"start": 1795877400 * 10**9, "end": 1795877460 * 10**9, "step": "1m"}
    (requests,) = _series(metrics_server, "http_server_requests_total", match=['service_name="orders-api"'], **window)
    assert requests["kind"] == "cumulative" and requests["points"] == [[window["start"], 3.0]]
    old = {"start": 1544712600 * 10**9, "end": 1544712720 * 10**9, "step": "1m"}
    (exp,) = _series(metrics_server, "my_exponential_histogram", **old)
    assert exp["counts"] == [3.0] and exp["bounds"] == [0.0, 4.0, 8.0] and exp["buckets"] == [[1.0, 0.0, 2.0, 0.0]]


def test_bad_input_as_for_traces(metrics_server: SpanlakeServer, dump_log) -> None:
    dump_log(metrics_server)
    url = metrics_server.otlp_http + "/v1/metrics"
    r = httpx.post(url, content=b"\xff\xff\xff", headers=PROTOBUF, timeout=30)
    assert r.status_code == 400
    r = httpx.post(url, content=b"{not json", headers=JSON, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == 3
    r = httpx.post(url, content=b"{}", headers={"Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 415
    doc = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bad-input"}}]},
                                "scopeMetrics": [{"metrics": [
        {"name": "ok.gauge", "gauge": {"dataPoints": [{"timeUnixNano": str(time.time_ns()), "asDouble": 1}]}},
        {"name": "bad.sum", "sum": {"isMonotonic": True, "dataPoints": [{"timeUnixNano": "1", "asInt": "1"}]}},
    ]}]}]}
    r = httpx.post(url, content=gzip.compress(json.dumps(doc).encode()),
                   headers={**JSON, "Content-Encoding": "gzip"}, timeout=30)
    assert r.status_code == 200
    partial = r.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1" and "aggregation temporality is unspecified" in partial["errorMessage"]
    assert [s["points"][-1][1] for s in _series(metrics_server, "ok_gauge", match=['service_name="bad-input"'])] == [1.0]
    with grpc.insecure_channel(metrics_server.otlp_grpc) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                                     request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as e:
            export(b"\xff\xff\xff", timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply = metrics_service_pb2.ExportMetricsServiceResponse.FromString(export(b"", timeout=30))
        assert not reply.HasField("partial_success")


# -- series derived from spans and logs ------------------------------------------------------


def test_span_metrics_exact_in_prometheus_text_openmetrics_and_jaeger(metrics_server: SpanlakeServer, dump_log) -> None:
    dump_log(metrics_server)
    service = "m-spans"
    plan = [("GET /a", SERVER, False, 3.0), ("GET /a", SERVER, False, 3.5), ("GET /a", SERVER, True, 120.0),
            ("GET /b", SERVER, False, 20000.0), ("call db", CLIENT, False, 1.0), ("GET /a", SERVER, False, 2.0)]
    sent = [span(os.urandom(16), name, kind, ms, error=error) for name, kind, error, ms in plan]
    resource = {"deployment.environment.name": "e2e"}
    _send_spans(metrics_server, make_request(service, sent[:3], resource), make_request(service, sent[3:], resource))

    def calls():
        fams = scrape(metrics_server)
        got = samples(fams, "traces_span_metrics_calls", service_name=service)
        return fams if sum(got.values()) == len(plan) else None

    fams = wait_for(calls, what="span metrics on /metrics")
    expected: dict[tuple, list] = {}
    for name, kind, error, ms in plan:
        labels = {"service_name": service, "span_name": name, "deployment_environment_name": "e2e",
                  "span_kind": "SPAN_KIND_SERVER" if kind == SERVER else "SPAN_KIND_CLIENT",
                  "status_code": "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET"}
        acc = expected.setdefault(tuple(sorted(labels.items())), [0, 0.0, [0] * (len(SPAN_DURATION_BOUNDS_MS) + 1)])
        acc[0] += 1
        acc[1] += ms
        acc[2][bisect_left(SPAN_DURATION_BOUNDS_MS, ms)] += 1
    calls = samples(fams, "traces_span_metrics_calls", service_name=service)
    assert calls == {k: float(v[0]) for k, v in expected.items()}
    family = "traces_span_metrics_duration_milliseconds"
    for key, (n, total, buckets) in expected.items():
        labels = dict(key)
        assert samples(fams, family, family + "_count", **labels) == {key: float(n)}
        assert list(samples(fams, family, family + "_sum", **labels).values()) == [pytest.approx(total)]
        cumulative = 0
        for bound, count in zip([*SPAN_DURATION_BOUNDS_MS, float("inf")], buckets):
            cumulative += count
            le = "+Inf" if bound == float("inf") else f"{float(bound)}"
            assert list(samples(fams, family, family + "_bucket", le=le, **labels).values()) == [cumulative]

    om = scrape(metrics_server, openmetrics=True)
    exemplars = [s.exemplar for s in om[family].samples
                 if s.labels.get("service_name") == service and s.exemplar is not None]
    assert {e.labels["trace_id"] for e in exemplars} <= {s.trace_id.hex() for s in sent}
    assert len(exemplars) == sum(1 for v in expected.values() for b in v[2] if b)

    end_ms = time.time_ns() // 1_000_000 + 1000
    r = httpx.get(metrics_server.http_url + "/api/metrics/calls", timeout=30,
                  params={"service": service, "endTs": end_ms, "lookback": 60_000, "step": 5_000, "ratePer": 120_000})
    (metric,) = r.json()["metrics"]
    assert metric["labels"] == [{"name": "service_name", "value": service}]
    assert metric["metricPoints"][-1]["gaugeValue"]["doubleValue"] == pytest.approx(5 / 120)
    r = httpx.get(metrics_server.http_url + "/api/metrics/errors", timeout=30,
                  params={"service": service, "endTs": end_ms, "ratePer": 120_000, "groupByOperation": "true"})
    rates = {m["labels"][1]["value"]: m["metricPoints"][-1]["gaugeValue"]["doubleValue"] for m in r.json()["metrics"]}
    assert rates == {"GET /a": 0.25, "GET /b": 0.0}


def test_service_graph_across_requests(metrics_server: SpanlakeServer, dump_log) -> None:
    dump_log(metrics_server)
    tid = os.urandom(16)
    root = span(tid, "GET /checkout", SERVER, 50)
    call = span(tid, "POST cart", CLIENT, 30, parent=root)
    serve = span(tid, "POST /cart", SERVER, 25, parent=call)
    query = span(tid, "SELECT", CLIENT, 2, parent=serve, db__system="postgresql", db__name="sg-orders-db")
    publish = span(tid, "publish", PRODUCER, 1, parent=serve)
    consume = span(tid, "consume", CONSUMER, 80, parent=publish)
    # the halves of each call arrive in different requests, the server's first
    _send_spans(metrics_server, make_request("sg-cart", [serve, query, publish]))
    _send_spans(metrics_server, make_request("sg-frontend", [root, call]))
    _send_spans(metrics_server, make_request("sg-worker", [consume]))
    want = {
        (("client", "user"), ("connection_type", "virtual_node"), ("server", "sg-frontend")): 1.0,
        (("client", "sg-frontend"), ("server", "sg-cart")): 1.0,
        (("client", "sg-cart"), ("connection_type", "database"), ("server", "sg-orders-db")): 1.0,
        (("client", "sg-cart"), ("connection_type", "messaging_system"), ("server", "sg-worker")): 1.0,
    }

    def edges():
        fams = scrape(metrics_server)
        got = {k: v for k, v in samples(fams, "traces_service_graph_request").items()
               if any(x.startswith("sg-") for _, x in k)}
        return fams if got == want else None

    fams = wait_for(edges, what="service-graph edges")
    family = "traces_service_graph_request_server_seconds"
    server_sum = samples(fams, family, family + "_sum", client="sg-frontend", server="sg-cart")
    assert list(server_sum.values()) == [pytest.approx(0.025)]


def test_log_counts(metrics_server: SpanlakeServer, dump_log) -> None:
    dump_log(metrics_server)
    body = (CONFORMANCE / "otlp" / "python-sdk" / "001-logs.json").read_bytes()
    doc = json.loads(body)
    expected: dict[tuple, float] = {}
    for rl in doc["resourceLogs"]:
        service = next(a["value"]["stringValue"] for a in rl["resource"]["attributes"] if a["key"] == "service.name")
        for sl in rl["scopeLogs"]:
            for rec in sl["logRecords"]:
                key = (("service_name", service), ("severity", severity_label(int(rec.get("severityNumber", 0)))))
                expected[key] = expected.get(key, 0) + 1
    r = httpx.post(metrics_server.otlp_http + "/v1/logs", content=body, headers=JSON, timeout=30)
    assert r.status_code == 200, r.text
    services = {dict(k)["service_name"] for k in expected}

    def counts():
        got = {k: v for k, v in samples(scrape(metrics_server), "spanlake_log_records").items()
               if dict(k)["service_name"] in services}
        return got if got == expected else None

    wait_for(counts, what="log counts on /metrics")


# -- servers of their own --------------------------------------------------------------------


def test_cardinality_limit_overflow_series(tmp_path, dump_log) -> None:
    with SpanlakeServer(tmp_path / "data", *FAST, "--metrics-cardinality-limit", "3") as server:
        dump_log(server)
        spans = [span(os.urandom(16), f"GET /session/{i}", SERVER, 1) for i in range(8)]
        _send_spans(server, make_request("card", spans))

        def calls():
            got = samples(scrape(server), "traces_span_metrics_calls")
            return got if sum(got.values()) == 8 else None

        got = wait_for(calls, what="span metrics with overflow")
        assert got[(("otel_metric_overflow", "true"),)] == 5
        assert len(got) == 4


def test_workers_add_up(tmp_path, dump_log) -> None:
    """Each receiver process stores its own deltas; /metrics adds them up exactly."""
    with SpanlakeServer(tmp_path / "data", *FAST, "--workers", "2") as server:
        dump_log(server)
        for i in range(12):  # a new connection each time: the kernel spreads them over the workers
            _send_spans(server, make_request("workers", [span(os.urandom(16), "op", SERVER, 5) for _ in range(10)]))

        def calls():
            got = samples(scrape(server), "traces_span_metrics_calls", service_name="workers")
            return got if sum(got.values()) >= 120 else None

        got = wait_for(calls, what="calls from both workers")
        assert sum(got.values()) == 120
        time.sleep(2.5)  # later flushes add nothing
        assert sum(samples(scrape(server), "traces_span_metrics_calls", service_name="workers").values()) == 120
