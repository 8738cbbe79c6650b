"""The serve process: readiness, metrics, graceful shutdown, crash durability, workers."""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from spanlake.storage.api import GetTrace, TraceQuery
from tests.e2e.conftest import open_reader
from tests.e2e.otlp_builders import make_request, make_span
from tests.server import SpanlakeServer


def _metrics(server) -> dict[tuple[str, tuple], float]:
    text = httpx.get(server.http_url + "/metrics").text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_health_ready_and_metrics(shared_server) -> None:
    assert httpx.get(shared_server.http_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(shared_server.http_url + "/readyz").status_code == 200
    earlier = _metrics(shared_server)
    before = earlier.get(("spanlake_receiver_spans_accepted_total", (("protocol", "grpc"),)), 0)
    with grpc.insecure_channel(shared_server.otlp_grpc) as ch:
        trace_service_pb2_grpc.TraceServiceStub(ch).Export(make_request("metrics-svc", [make_span() for _ in range(7)]))
    m = _metrics(shared_server)
    assert m[("spanlake_receiver_spans_accepted_total", (("protocol", "grpc"),))] == before + 7
    assert ("spanlake_write_queue_spans", ()) in m
    assert m[("spanlake_store_size_bytes", ())] > 0
    assert m[("spanlake_storage_commits_total", ())] >= earlier.get(("spanlake_storage_commits_total", ()), 0) + 1
    assert m[("spanlake_storage_committed_rows_total", ())] >= (
        earlier.get(("spanlake_storage_committed_rows_total", ()), 0) + 7)
    assert m[("spanlake_storage_commit_seconds_total", ())] > earlier.get(("spanlake_storage_commit_seconds_total", ()), 0)
    assert m[("spanlake_receiver_request_duration_seconds_count", (("protocol", "grpc"),))] >= 1


def test_sigterm_flushes_and_exits_zero(tmp_path) -> None:
    server = SpanlakeServer(tmp_path / "d").start()
    tids = []
    with grpc.insecure_channel(server.otlp_grpc) as ch:
        stub = trace_service_pb2_grpc.TraceServiceStub(ch)
        for _ in range(5):
            span = make_span()
            tids.append(bytes(span.trace_id))
            stub.Export(make_request("sigterm-svc", [span]))
    assert server.kill(signal.SIGTERM) == 0, server.log()
    assert any('"stopped"' in line for line in server.log_lines), server.log()
    store = open_reader(server.data_dir)
    try:
        assert all(len(store.get_trace(GetTrace(t))) == 1 for t in tids)
    finally:
        store.close()


def test_every_acknowledged_span_survives_kill_9(tmp_path) -> None:
    server = SpanlakeServer(tmp_path / "d").start()
    acked: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        with grpc.insecure_channel(server.otlp_grpc) as ch:
            stub = trace_service_pb2_grpc.TraceServiceStub(ch)
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                tid = os.urandom(16)
                req = make_request("crash-svc", [make_span(tid) for _ in range(50)])
                try:
                    stub.Export(req, timeout=10)
                except grpc.RpcError:
                    return
                with lock:
                    acked.append(tid)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    while len(acked) < 30:
        time.sleep(0.05)
        assert server.alive(), server.log()
    server.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    server.start()  # same data directory
    try:
        store = open_reader(server.data_dir)
        try:
            missing = [t.hex() for t in acked if len(store.get_trace(GetTrace(t))) != 50]
        finally:
            store.close()
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged traces lost"
    finally:
        server.stop()


def test_workers_share_ports_and_store(tmp_path) -> None:
    with SpanlakeServer(tmp_path / "d", "--workers", "2") as server:
        tids = []
        for _ in range(12):  # a channel each: the kernel spreads connections over the processes
            with grpc.insecure_channel(server.otlp_grpc) as ch:
                span = make_span()
                tids.append(bytes(span.trace_id))
                trace_service_pb2_grpc.TraceServiceStub(ch).Export(make_request("workers-svc", [span]))
        for _ in range(6):
            span = make_span()
            tids.append(bytes(span.trace_id))
            r = httpx.post(server.otlp_http + "/v1/traces", content=make_request("workers-svc", [span]).SerializeToString(),
                           headers={"Content-Type": "application/x-protobuf"})
            assert r.status_code == 200
        store = open_reader(server.data_dir)
        try:
            assert all(len(store.get_trace(GetTrace(t))) == 1 for t in tids)
            assert len(store.find_trace_ids(TraceQuery(service_name="workers-svc", limit=100))) == 18
        finally:
            store.close()
        pids = {line for line in server.log_lines if "worker ready" in line}
        assert len(pids) == 1, server.log()
