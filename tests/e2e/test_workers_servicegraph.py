"""Service-graph pairing with ``spanlake serve --workers 2``: the client and server halves of a
call sent on different connections (so SO_REUSEPORT spreads them over the processes) still pair,
exactly once, on /metrics, the series API and in the stored samples; SIGTERM still flushes and
exits 0, and a worker dying does not hang the main process.

Which process accepted each request is read from the per-process files of prometheus_client's
multiprocess mode (``spanlake_receiver_spans_accepted_total`` goes up in the file of the process
that committed it, before the response is sent), so the tests know that halves really landed in
different processes and would fail without cross-process pairing.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import time
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from spanlake.storage.api import LabelMatcher, SampleQuery
from tests.e2e.conftest import open_reader
from tests.e2e.otlp_builders import make_request
from tests.metrics.builders import CLIENT, CONSUMER, PRODUCER, SERVER, span
from tests.server import SpanlakeServer, wait_for

ARGS = ("--workers", "2", "--metrics-resolution", "1s", "--service-graph-wait", "5s", "--commit-interval-ms", "10")
REQUESTS = "traces_service_graph_request_total"
UNPAIRED = "traces_service_graph_unpaired_spans_total"


class Processes:
    """Which serve process committed each request, from the per-process metric files."""

    def __init__(self, prom_dir: Path) -> None:
        self.prom_dir = prom_dir
        self._last = self.accepted()

    def accepted(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for path in glob.glob(str(self.prom_dir / "counter_*.db")):
            pid = Path(path).stem.rsplit("_", 1)[-1]
            for key, value, _, _ in MmapedDict.read_all_values_from_file(path):
                if json.loads(key)[1] == "spanlake_receiver_spans_accepted_total":
                    out[pid] = out.get(pid, 0) + value
        return out

    def which(self) -> str:
        """The process whose accepted-span count went up since the last call (exactly one)."""
        now = self.accepted()
        grew = [pid for pid, v in now.items() if v > self._last.get(pid, 0)]
        self._last = now
        assert len(grew) == 1, f"expected one process to accept the request, got {grew}"
        return grew[0]


@pytest.fixture
def started(request: pytest.FixtureRequest):
    """Servers a test starts: stopped after it, their log printed if it failed."""
    servers: list[SpanlakeServer] = []
    yield servers
    for s in servers:
        s.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for s in servers:
            print("---- spanlake serve log ----\n" + s.log())


def _start(tmp_path: Path, started: list, *extra: str) -> tuple[SpanlakeServer, Processes, int]:
    prom = tmp_path / "prom"
    prom.mkdir()
    server = SpanlakeServer(tmp_path / "data", *ARGS, *extra, env={"PROMETHEUS_MULTIPROC_DIR": str(prom)})
    started.append(server)
    server.start()
    deadline = time.monotonic() + 60
    while not any('"worker ready"' in line for line in server.log_lines):  # else every connection goes to main
        assert server.alive() and time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    worker_pid = next(json.loads(line)["pid"] for line in server.log_lines if '"worker ready"' in line)
    return server, Processes(prom), worker_pid


def _send(server: SpanlakeServer, service: str, spans: list, via_http: bool) -> None:
    """One request on a connection of its own."""
    req = make_request(service, spans)
    if via_http:
        r = httpx.post(server.otlp_http + "/v1/traces", content=req.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"}, timeout=30)
        assert r.status_code == 200, r.text
        return
    with grpc.insecure_channel(server.otlp_grpc, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        trace_service_pb2_grpc.TraceServiceStub(ch).Export(req, timeout=30)


def _send_traces(server: SpanlakeServer, procs: Processes, prefix: str, n: int,
                 clients_first: bool = False) -> tuple[dict, dict]:
    """``n`` traces of <prefix>frontend -> <prefix>cart (server errors on every 5th) -> a
    database and a queue -> <prefix>worker, every call's halves in different requests, each on
    its own connection. Returns the expected edges and, per hop, how many traces had their
    halves in different processes. ``clients_first`` sends every trace's client halves, then
    every trace's server halves (so the last requests are all server halves)."""
    split = {"rpc": 0, "queue": 0, "db": 0}
    later: list = []
    for i in range(n):
        tid = os.urandom(16)
        root = span(tid, "GET /checkout", SERVER, 50)
        call = span(tid, "POST cart", CLIENT, 30, parent=root)
        serve = span(tid, "POST /cart", SERVER, 25, parent=call, error=(i % 5 == 0))
        query = span(tid, "SELECT", CLIENT, 2, parent=serve, db__system="postgresql", db__name=prefix + "carts-db")
        publish = span(tid, "publish order", PRODUCER, 1, parent=serve)
        consume = span(tid, "process order", CONSUMER, 80, parent=publish)
        where = {}
        # the server half first for some, the client half first for others
        order = [("frontend", [root, call]), ("cart", [serve])]
        if i % 2:
            order.reverse()
        requests = order + [("cart", [query]), ("cart", [publish]), ("worker", [consume])]
        if clients_first:
            requests, servers = [("frontend", [root, call]), ("cart", [publish])], \
                [("cart", [serve, query]), ("worker", [consume])]
            later.append((i, where, servers))
        _send_all(server, procs, prefix, requests, where, i)
        if not clients_first:
            _count_split(split, where)
    for i, where, requests in later:
        _send_all(server, procs, prefix, requests, where, i + 1)
        _count_split(split, where)
    f, c = prefix + "frontend", prefix + "cart"
    edges = {
        ("user", f, "virtual_node"): n,
        (f, c, ""): n,
        (c, prefix + "carts-db", "database"): n,
        (c, prefix + "worker", "messaging_system"): n,
    }
    return edges, split


def _send_all(server: SpanlakeServer, procs: Processes, prefix: str, requests: list, where: dict, i: int) -> None:
    """Send each request on its own connection (HTTP or gRPC in turn); note which process took it."""
    for k, (service, spans) in enumerate(requests):
        _send(server, prefix + service, spans, via_http=(i + k) % 2 == 1)
        pid = procs.which()
        for s in spans:
            where[s.name] = pid


def _count_split(split: dict, where: dict) -> None:
    split["rpc"] += where["POST cart"] != where["POST /cart"]
    split["db"] += where["SELECT"] != where["POST /cart"]
    split["queue"] += where["publish order"] != where["process order"]


def _scrape(server: SpanlakeServer) -> dict[str, dict[tuple, float]]:
    text = httpx.get(server.http_url + "/metrics", timeout=30).text
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _labelled(scraped: dict, name: str) -> list[tuple[dict, float]]:
    return [(dict(k), v) for k, v in scraped.get(name, {}).items()]


def _edges_on_metrics(scraped: dict, prefix: str) -> dict[tuple, float]:
    return {(d["client"], d["server"], d.get("connection_type", "")): v for d, v in _labelled(scraped, REQUESTS)
            if d.get("client", "").startswith(prefix) or d.get("server", "").startswith(prefix)}


def _series_totals(server: SpanlakeServer, metric: str, prefix: str) -> dict[tuple, float]:
    r = httpx.get(server.http_url + "/api/spanlake/v1/series", timeout=30,
                  params={"metric": metric, "lookback": "15m", "step": "1m"})
    assert r.status_code == 200, r.text
    out: dict[tuple, float] = {}
    for s in r.json()["series"]:
        labels = s["labels"]
        if not any(v.startswith(prefix) for v in labels.values()):
            continue
        key = (labels.get("client", ""), labels.get("server", ""), labels.get("connection_type", ""))
        out[key] = out.get(key, 0) + sum(v for _, v in s["points"] if v is not None)
    return out


def test_halves_received_by_different_processes_pair_exactly_once(tmp_path: Path, started) -> None:
    server, procs, _ = _start(tmp_path, started)
    n = 24
    edges, split = _send_traces(server, procs, "wsg-", n)
    # both processes took requests, and halves of every hop type were split between them
    assert len([v for v in procs.accepted().values() if v]) == 2, procs.accepted()
    assert min(split.values()) >= 2, split

    wait_for(lambda: _edges_on_metrics(_scrape(server), "wsg-") == edges, 40, "the edges on /metrics")
    time.sleep(5 + 1 + 2)  # past the wait: a half nobody paired would now count as unpaired
    scraped = _scrape(server)
    assert _edges_on_metrics(scraped, "wsg-") == edges
    unpaired = {k: v for k, v in scraped.get(UNPAIRED, {}).items() if any(x.startswith("wsg-") for _, x in k)}
    assert unpaired == {}
    failed = {(d["client"], d["server"]): v for d, v in _labelled(scraped, "traces_service_graph_request_failed_total")
              if d.get("client") == "wsg-frontend"}
    assert failed == {("wsg-frontend", "wsg-cart"): len(range(0, n, 5))}
    server_count = {d["client"]: v for d, v in _labelled(scraped, "traces_service_graph_request_server_seconds_count")
                    if d.get("server") == "wsg-cart"}
    assert server_count == {"wsg-frontend": n}
    assert sum(scraped.get("spanlake_service_graph_relayed_halves_total", {}).values()) > 0

    assert _series_totals(server, REQUESTS, "wsg-") == edges
    assert _series_totals(server, UNPAIRED, "wsg-") == {}

    assert server.stop() == 0
    assert any('"worker stopped"' in line for line in server.log_lines)


def test_sigterm_right_after_sending_still_pairs_and_stores_every_edge(tmp_path: Path, started) -> None:
    # a long wait: on a loaded machine sending every client half first may take a while
    server, procs, _ = _start(tmp_path, started, "--service-graph-wait", "120s")
    edges, split = _send_traces(server, procs, "term-", 10, clients_first=True)
    assert split["rpc"] + split["queue"] >= 2, split
    assert server.stop() == 0  # at once: halves are still waiting in both processes
    store = open_reader(server.data_dir)
    try:
        now = time.time_ns()
        series = store.query_samples(SampleQuery((REQUESTS,), now - 600 * 10**9, now + 60 * 10**9, 660 * 10**9,
                                                 (LabelMatcher("client", "=~", "term-.*|user"),)))
    finally:
        store.close()
    got: dict[tuple, float] = {}
    for s in series:
        if s.labels.get("server", "").startswith("term-"):
            key = (s.labels["client"], s.labels["server"], s.labels.get("connection_type", ""))
            got[key] = got.get(key, 0) + sum(s.values)
    assert got == edges


def test_a_worker_dying_does_not_hang_the_main_process(tmp_path: Path, started) -> None:
    server, procs, worker_pid = _start(tmp_path, started)
    os.kill(worker_pid, signal.SIGKILL)
    wait_for(lambda: any("worker exited" in line for line in server.log_lines), 20, "the relay noticing")
    edges, _ = _send_traces(server, procs, "dead-", 4)  # now all reach the main process
    wait_for(lambda: _edges_on_metrics(_scrape(server), "dead-") == edges, 40, "the edges on /metrics")
    assert server.alive()
    began = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - began < 30
