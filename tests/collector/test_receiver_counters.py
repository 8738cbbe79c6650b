"""Each signal counts its own items: spans, log records and metric data points, received,
accepted and rejected by reason, per protocol (receivers in process over fake writers)."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Future

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client import REGISTRY

from spanlake.collector.http_server import create_otlp_http_app
from spanlake.collector.ingest import span_ingest
from spanlake.collector.signals import log_ingest, logs_signal, metric_ingest, metrics_signal, traces_signal
from spanlake.storage.api import WriteQueueFull
from tests.e2e.otlp_builders import make_request, make_span
from tests.logs.otlp_logs import make_log, make_logs_request

PROTOBUF = {"Content-Type": "application/x-protobuf"}
COUNTERS = {
    "traces": "spanlake_receiver_spans",
    "logs": "spanlake_receiver_log_records",
    "metrics": "spanlake_receiver_metric_points",
}


class Writer:
    """Commits at once, or refuses everything with ``error``."""

    def __init__(self, error: type[Exception] | None = None) -> None:
        self.error = error

    def _write(self, batch) -> Future:
        if self.error is not None:
            raise self.error("full")
        done: Future = Future()
        done.set_result(None)
        return done

    write_spans = write_logs = write_samples = _write


def _app(writer: Writer):
    return create_otlp_http_app([
        traces_signal(span_ingest(writer)),  # type: ignore[arg-type]
        logs_signal(log_ingest(writer)),  # type: ignore[arg-type]
        metrics_signal(metric_ingest(writer)),  # type: ignore[arg-type]
    ], 1 << 20)


def _post(app, path: str, body: bytes) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post(path, content=body, headers=PROTOBUF)

    return asyncio.run(go())


def _counts() -> dict[tuple[str, str, str], float]:
    """(signal, outcome, reason) -> value of the http series."""
    out = {}
    for signal, prefix in COUNTERS.items():
        for outcome in ("received", "accepted"):
            out[(signal, outcome, "")] = REGISTRY.get_sample_value(f"{prefix}_{outcome}_total", {"protocol": "http"}) or 0
        for reason in ("invalid", "undecodable", "queue_full"):
            out[(signal, "rejected", reason)] = REGISTRY.get_sample_value(
                f"{prefix}_rejected_total", {"protocol": "http", "reason": reason}) or 0
    return out


def _delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def _gauge_request(points: int) -> bytes:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="queue.depth")
    for i in range(points):
        metric.gauge.data_points.add(time_unix_nano=1_700_000_000_000_000_000 + i, as_int=i)
    return req.SerializeToString()


def test_log_records_have_their_own_counters() -> None:
    app = _app(Writer())
    before = _counts()
    logs = make_logs_request("counted", [make_log("a"), make_log("b"), make_log("bad", trace_id=os.urandom(5))])
    assert _post(app, "/v1/logs", logs.SerializeToString()).status_code == 200
    assert _post(app, "/v1/logs", b"\x0a\xff\xff\xff\x0f\x01").status_code == 400
    assert _delta(before, _counts()) == {
        ("logs", "received", ""): 3,
        ("logs", "accepted", ""): 2,
        ("logs", "rejected", "invalid"): 1,
        ("logs", "rejected", "undecodable"): 1,
    }


def test_metric_points_have_their_own_counters() -> None:
    app = _app(Writer())
    before = _counts()
    assert _post(app, "/v1/metrics", _gauge_request(4)).status_code == 200
    assert _delta(before, _counts()) == {("metrics", "received", ""): 4, ("metrics", "accepted", ""): 4}


def test_spans_still_count_as_spans() -> None:
    app = _app(Writer())
    before = _counts()
    assert _post(app, "/v1/traces", make_request("counted", [make_span() for _ in range(5)]).SerializeToString()).status_code == 200
    assert _delta(before, _counts()) == {("traces", "received", ""): 5, ("traces", "accepted", ""): 5}


@pytest.mark.parametrize("signal,path,body,n", [
    ("logs", "/v1/logs", make_logs_request("full", [make_log(), make_log()]).SerializeToString(), 2),
    ("metrics", "/v1/metrics", _gauge_request(3), 3),
])
def test_a_full_queue_is_counted_for_its_signal(signal, path, body, n) -> None:
    app = _app(Writer(WriteQueueFull))
    before = _counts()
    assert _post(app, path, body).status_code == 429
    assert _delta(before, _counts()) == {(signal, "received", ""): n, (signal, "rejected", "queue_full"): n}
