"""Ingest benchmark: durable spans/s through a real ``spanlake serve`` over OTLP/gRPC.

Run from the repository root::

    python -m bench.ingest --seconds 12 --repeat 3

It prints, each as the median of ``--repeat`` runs where that applies:

* the decode-only rate of the same requests in this process (the baseline, same run);
* durable spans/s accepted end to end by the server (every Export waited for its commit),
  from separate client processes sending pre-serialized 512-span requests;
* the ratio of the two per core used;
* bytes per span on disk after compaction, and the server's peak RSS (all its processes);
* with ``--overload``: the same at twice the measured rate, with the count of
  RESOURCE_EXHAUSTED answers and the peak RSS (memory must stay bounded);
* the same end-to-end rate with span metrics and the service graph turned off, measured in
  turn with the runs above (on, off, on, off...), and how much slower ingest is with them on
  (target: at most 15%), plus the server's CPU time per span both ways, which other load on
  the machine disturbs less than the rates, and the CPU the aggregation alone costs per span
  in this process, against the decode cost. ``--no-metrics-compare`` skips it.

The logs ingest benchmark, ``bench/ingest_logs.py``, drives the server the same way
(:class:`Workload`, :func:`measure`) with log requests, beside the span rate of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import grpc
import psutil

from bench.workload import make_requests


def _decoded_spans(body: bytes) -> int:
    from spanlake.collector.decode_traces import decode_export_trace_request

    return decode_export_trace_request(body).batch.num_spans


def decode_rate(requests: list[bytes], repeat: int, decode: Callable[[bytes], int] = _decoded_spans) -> float:
    """Items per second ``decode`` (a request -> the items it decoded) gets through
    ``requests`` in this process: the median of ``repeat`` passes, after a warm-up."""
    for body in requests[:4]:  # caches, lazy imports
        decode(body)
    rates = []
    for _ in range(repeat):
        n = 0
        t0 = time.perf_counter()
        for body in requests:
            n += decode(body)
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def aggregation_cost(requests: list[bytes], repeat: int) -> tuple[float, float]:
    """CPU the span metrics and service graph cost in this process, fed as the server's
    aggregation thread feeds them (one round per 12,288 spans of committed batches): microseconds
    per span, and milliseconds per flush (once every resolution interval, 15 s by default)."""
    from spanlake.collector.decode_traces import decode_export_trace_request
    from spanlake.collector.servicegraph import ServiceGraph
    from spanlake.collector.spanmetrics import SpanMetrics
    from spanlake.metrics_model import SampleRows
    from spanlake.model import SpanBatch

    batches = [decode_export_trace_request(body).batch for body in requests]
    per_span, per_flush = [], []
    for _ in range(repeat):
        span_metrics, service_graph = SpanMetrics(), ServiceGraph()
        n = 0
        t0 = time.process_time()
        for _ in range(10):
            round_ = SpanBatch.concat(batches)
            span_metrics.observe(round_)
            service_graph.observe(round_)
            n += round_.num_spans
        t1 = time.process_time()
        rows = SampleRows()
        span_metrics.collect(0, rows)
        service_graph.collect(0, rows)
        rows.batch()
        per_span.append((t1 - t0) / n * 1e6)
        per_flush.append((time.process_time() - t1) * 1e3)
    return statistics.median(per_span), statistics.median(per_flush)


@dataclass(frozen=True)
class Workload:
    """What the client processes send: pre-serialized requests of one OTLP signal."""

    unit: str  # what a request carries, plural: "spans", "log records"
    method: str  # the gRPC method the requests go to
    make_requests: Callable[..., list[bytes]]  # (count, seed=...) -> serialized requests
    per_request: int  # items in each request


SPANS = Workload("spans", "/opentelemetry.proto.collector.trace.v1.TraceService/Export", make_requests, 512)


def _client(target: str, workload: Workload, seed: int, n_requests: int, seconds: float, inflight: int,
            rate_limit: float, out: "mp.Queue[tuple[int, int, int]]") -> None:
    bodies = workload.make_requests(n_requests, seed=seed)
    out.put(asyncio.run(_send(target, workload, bodies, seconds, inflight, rate_limit)))


async def _send(target: str, workload: Workload, bodies: list[bytes], seconds: float, inflight: int,
                rate_limit: float) -> tuple[int, int, int]:
    """``inflight`` senders on one event loop, each on its own connection (as that many SDK
    processes would hold: the kernel spreads connections, not requests, over the server's
    receiver processes), sending the serialized bytes as they are. One loop rather than a
    thread per sender: 128 threads contending for this process's GIL delayed their own
    requests by hundreds of milliseconds and took CPU from the server."""
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(inflight)]
    per_request = workload.per_request
    interval = (inflight * per_request / rate_limit) if rate_limit > 0 else 0.0
    counts = {"acked": 0, "exhausted": 0, "errors": 0}
    deadline = time.monotonic() + seconds

    async def sender(k: int) -> None:
        export = channels[k].unary_unary(workload.method, request_serializer=None, response_deserializer=None)
        i = k
        next_t = time.monotonic()
        while time.monotonic() < deadline:
            try:
                await export(bodies[i % len(bodies)], timeout=30)
                counts["acked"] += per_request
            except grpc.RpcError as e:
                counts["exhausted" if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else "errors"] += 1
                await asyncio.sleep(0.05)
            i += inflight
            if interval:
                next_t += interval
                await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    await asyncio.gather(*(sender(k) for k in range(inflight)))
    for ch in channels:
        await ch.close()
    return counts["acked"], counts["exhausted"], counts["errors"]


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.2):
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass


def drive(server, clients: int, seconds: float, inflight: int, rate_limit: float,
          workload: Workload = SPANS) -> tuple[float, int, int, int]:
    """Run ``clients`` sending processes for ``seconds``: (items/s acknowledged, items
    acknowledged, RESOURCE_EXHAUSTED answers, other errors)."""
    ctx = mp.get_context("spawn")
    q: "mp.Queue[tuple[int, int, int]]" = ctx.Queue()
    per_client = rate_limit / clients if rate_limit else 0.0
    procs = [ctx.Process(target=_client, args=(server.otlp_grpc, workload, 100 + i, 96, seconds, inflight, per_client, q))
             for i in range(clients)]
    for p in procs:
        p.start()
    # Clients spend a moment building requests; the clock starts inside each client, so use
    # the clients' own duration for the rate.
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    acked = sum(r[0] for r in results)
    return acked / seconds, acked, sum(r[1] for r in results), sum(r[2] for r in results)


#: Flags of the comparison runs: everything derived from spans off (log counts stay on).
METRICS_OFF = ["--span-metrics", "false", "--service-graph", "false"]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the server and its worker processes so far."""
    total = 0.0
    try:
        proc = psutil.Process(pid)
        for p in [proc] + proc.children(recursive=True):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass
class Run:
    """One measured server run."""

    workload: Workload
    rate: float  # durable items/s
    acked: int
    exhausted: int
    errors: int
    cpu_us: float  # server CPU (all its processes) per durable item
    peak_rss: int
    bytes_per_item: float  # on disk after compaction
    exit_code: int

    def describe(self) -> str:
        unit, one = self.workload.unit, self.workload.unit.removesuffix("s")
        return (f"{self.rate:,.0f} durable {unit}/s ({self.acked:,} {unit}, {self.exhausted} RESOURCE_EXHAUSTED, "
                f"{self.errors} errors), server CPU {self.cpu_us:.1f} us/{one}, {self.bytes_per_item:.1f} B/{one} "
                f"on disk, peak RSS {self.peak_rss / 2**20:.0f} MiB, exit {self.exit_code}")


def measure(data: Path, workers: int, extra: list[str], clients: int, seconds: float, inflight: int,
            workload: Workload = SPANS) -> Run:
    """Start a server on a fresh store in ``data``, drive it for ``seconds``, stop it (SIGTERM)
    and measure what it kept."""
    server = run_server(data, workers, extra)
    sampler = RssSampler(server.proc.pid)
    sampler.start()
    cpu0 = server_cpu_seconds(server.proc.pid)
    rate, acked, exhausted, errors = drive(server, clients, seconds, inflight, 0, workload)
    cpu_us = (server_cpu_seconds(server.proc.pid) - cpu0) / max(acked, 1) * 1e6
    sampler.stop_event.set()
    code = server.kill(signal.SIGTERM)
    stored = _compacted_size(data)
    return Run(workload, rate, acked, exhausted, errors, cpu_us, sampler.peak, stored / max(acked, 1), code)


#: Extra ``spanlake serve`` flags for every server this run starts (``--serve-arg``).
SERVE_ARGS: list[str] = []


def run_server(data: Path, workers: int, extra: list[str]):
    from tests.server import SpanlakeServer

    return SpanlakeServer(data, "--workers", str(workers), "--retention", "0", *SERVE_ARGS, *extra).start()


def load_arguments(doc: str | None, seconds: float) -> argparse.ArgumentParser:
    """The options of a load run (this benchmark's and ``bench/ingest_logs.py``'s). The
    defaults are the server's own (one process) and 128 exporters from one client process:
    with every Export waiting for its commit (up to a commit spacing, 250 ms, plus the commit),
    fewer in flight would measure the clients' patience rather than the server's capacity, and
    one client process takes the least CPU from the server on this 2-core machine."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=seconds)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--inflight", type=int, default=128,
                    help="concurrent requests per client process, each on its own connection")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="FLAG",
                    help="extra flag for spanlake serve, e.g. --serve-arg=--commit-interval-ms=200")
    return ap


def main() -> None:
    ap = load_arguments(__doc__, seconds=20)
    ap.add_argument("--overload", action="store_true", help="also run at 2x the measured rate")
    ap.add_argument("--no-metrics-compare", dest="metrics_compare", action="store_false",
                    help="skip the runs with span metrics and the service graph off")
    args = ap.parse_args()
    SERVE_ARGS.extend(args.serve_arg)

    requests = make_requests(24, seed=1)
    size = sum(len(b) for b in requests) / (24 * 512)
    print(f"workload: 512 spans/request, {size:.0f} bytes/span on the wire")
    base = decode_rate(requests, args.repeat)
    print(f"decode only, 1 process (baseline): {base:,.0f} spans/s (median of {args.repeat})")
    if args.metrics_compare:
        cost, flush_ms = aggregation_cost(requests, args.repeat)
        print(f"span metrics + service graph aggregation alone: {cost:.2f} us CPU/span "
              f"({cost * base / 1e6:.1%} of the decode cost) and {flush_ms:.0f} ms per flush "
              f"(every 15 s; the series of {len(requests)} requests), medians of {args.repeat}")

    rates, peaks, bps, rates_off = [], [], [], []
    cpu_on: list[float] = []
    cpu_off: list[float] = []
    root = Path(tempfile.mkdtemp(prefix="spanlake-bench-"))
    try:
        for r in range(args.repeat):
            run = measure(root / f"run{r}", args.workers, [], args.clients, args.seconds, args.inflight)
            cpu_on.append(run.cpu_us)
            rates.append(run.rate)
            peaks.append(run.peak_rss)
            bps.append(run.bytes_per_item)
            print(f"  run {r}: {run.describe()}")
            if args.metrics_compare:
                server = run_server(root / f"off{r}", args.workers, METRICS_OFF)
                cpu0 = server_cpu_seconds(server.proc.pid)
                off, acked_off, _, errors_off = drive(server, args.clients, args.seconds, args.inflight, 0)
                cpu_off.append((server_cpu_seconds(server.proc.pid) - cpu0) / max(acked_off, 1) * 1e6)
                server.kill(signal.SIGTERM)
                rates_off.append(off)
                print(f"  run {r}, span metrics and service graph off: {off:,.0f} durable spans/s "
                      f"({acked_off:,} spans, {errors_off} errors); server CPU {cpu_off[-1]:.1f} us/span "
                      f"against {cpu_on[-1]:.1f} with them on")
        med = statistics.median(rates)
        cores = min(args.workers, os.cpu_count() or 1)
        print(f"end to end, --workers {args.workers}: {med:,.0f} durable spans/s (median of {args.repeat})")
        print(f"efficiency: {med / cores / base:.0%} of the decode-only rate per core used ({cores} cores)")
        print(f"stored size: {statistics.median(bps):.1f} bytes/span after compaction")
        print(f"peak RSS: {statistics.median(peaks) / 2**20:.0f} MiB")
        if rates_off:
            off = statistics.median(rates_off)
            slower = 1 - med / off
            verdict = f"{slower:.1%} slower" if slower >= 0 else f"{-slower:.1%} faster (other load on the machine)"
            print(f"span metrics + service graph: {med:,.0f} spans/s on, {off:,.0f} off (medians of {args.repeat}): "
                  f"{verdict} with them on (target: at most 15% slower)")
            on_cpu, off_cpu = statistics.median(cpu_on), statistics.median(cpu_off)
            print(f"server CPU per durable span: {on_cpu:.1f} us on, {off_cpu:.1f} us off: "
                  f"{on_cpu / off_cpu - 1:+.1%} (less sensitive than the rates to other load on the machine)")
        if args.overload:
            data = root / "overload"
            server = run_server(data, args.workers, ["--max-queue-spans", "100000"])
            sampler = RssSampler(server.proc.pid)
            sampler.start()
            rate, acked, exhausted, errors = drive(server, args.clients * 2, args.seconds, args.inflight * 2, 0)
            sampler.stop_event.set()
            server.kill(signal.SIGTERM)
            print(f"overload (2x clients and concurrency): {rate:,.0f} durable spans/s, {exhausted} RESOURCE_EXHAUSTED, "
                  f"{errors} errors, peak RSS {sampler.peak / 2**20:.0f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _compacted_size(data: Path) -> int:
    from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

    store = DuckLakeStore(DuckLakeOptions(data_dir=str(data), maintenance_interval_s=0))
    try:
        compact = getattr(store, "compact", None)
        if compact is not None:
            compact()
            cleanup = getattr(store, "cleanup", None)
            if cleanup is not None:
                cleanup()
    finally:
        store.close()
    return dir_size(data)


if __name__ == "__main__":
    main()
