"""``spanlake serve``: every component in one asyncio process, plus optional receiver workers.

The main process opens the store, binds every listener (OTLP/gRPC, OTLP/HTTP, query HTTP),
prints the addresses it really listens on, and marks itself ready. With ``--workers N`` it
starts N-1 receiver processes that bind the same OTLP ports (SO_REUSEPORT: the kernel spreads
connections over them) and write to the same store, so decoding uses every core. Every
process derives series from the spans it receives, except that the main process pairs the
service graph's halves for all of them: each worker forwards the halves it could not pair over
a pipe (:mod:`spanlake.collector.servicegraph_relay`).

Shutdown (SIGINT/SIGTERM): stop accepting, let in-flight exports finish, commit everything
accepted, let the workers send their last halves and exit, write the last derived series,
close the store, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn

from spanlake.config import Config, parse_host_port
from spanlake.logs import setup_logging

log = logging.getLogger("spanlake.server")


class _Uvicorn(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us."""

    def capture_signals(self):  # type: ignore[override]
        return contextlib.nullcontext()


def _bind_tcp(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose listener
    # says TCP; with protocol 0 every keep-alive request after the first waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _display(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"


def open_store(config: Config, *, maintenance: bool = True):
    """Open the configured DuckLake store (the only backend ``serve`` uses)."""
    from spanlake.storage.ducklake.store import DuckLakeOptions
    from spanlake.storage.registry import open_store as registry_open

    s = config.storage
    options = DuckLakeOptions(
        data_dir=s.data_dir,
        catalog=s.catalog,
        data_path=s.data_path,
        memory_limit=s.memory_limit,
        threads=s.threads,
        max_queue_spans=s.max_queue_spans,
        commit_interval_ms=s.commit_interval_ms,
        commit_spacing_ms=s.commit_spacing_ms,
        retention_ns=s.retention_ns if maintenance else None,
        maintenance_interval_s=300.0 if maintenance else 0.0,
    )
    return registry_open("ducklake", options)


@dataclass
class _Receivers:
    grpc_server: Any
    http_server: _Uvicorn
    http_task: asyncio.Task
    grpc_port: int
    http_port: int
    aggregation: Any = None  # collector.aggregation.MetricsAggregation

    async def stop_listeners(self) -> None:
        """Stop accepting and let in-flight exports finish."""
        self.http_server.should_exit = True
        await self.grpc_server.stop(grace=10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.http_task, 15)

    async def close_aggregation(self) -> None:
        if self.aggregation is not None:  # writes the last partial interval
            await asyncio.to_thread(self.aggregation.close)

    async def stop(self) -> None:
        await self.stop_listeners()
        await self.close_aggregation()


async def _start_receivers(config: Config, store, grpc_port: int, http_port: int, *,
                           forward_halves: Any = None) -> _Receivers:
    """Start the OTLP receivers of this process. ``forward_halves`` (a worker's
    ``HalfSender``) puts its service graph in forwarding mode before any span arrives."""
    from spanlake.collector.grpc_server import start_grpc_receiver
    from spanlake.collector.http_server import create_otlp_http_app
    from spanlake.collector.ingest import span_ingest
    from spanlake.collector.signals import traces_signal
    from spanlake.collector.signals import log_ingest, logs_signal
    from spanlake.collector.aggregation import start_aggregation
    from spanlake.collector.signals import metric_ingest, metrics_signal

    aggregation = start_aggregation(config.metrics, store)
    if forward_halves is not None and aggregation.service_graph is not None:
        aggregation.service_graph.forward_to(forward_halves)
    observed = aggregation.wrap(store)  # committed spans and logs also feed the derived series
    signals = [traces_signal(span_ingest(observed)), logs_signal(log_ingest(observed)),
               metrics_signal(metric_ingest(store))]
    limit = config.collector.max_message_bytes
    ghost, _ = parse_host_port(config.collector.otlp_grpc)
    grpc_server, grpc_bound = await start_grpc_receiver(ghost, grpc_port, signals, limit)
    hhost, _ = parse_host_port(config.collector.otlp_http)
    sock = _bind_tcp(hhost, http_port, reuse_port=True)
    http_bound = sock.getsockname()[1]
    server = _Uvicorn(
        uvicorn.Config(create_otlp_http_app(signals, limit), log_config=None, access_log=False,
                       lifespan="off", h11_max_incomplete_event_size=limit)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    return _Receivers(grpc_server, server, task, grpc_bound, http_bound, aggregation)


def _install_stop_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _serve_main(config: Config) -> int:
    from spanlake.query.api.app import create_app

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _install_stop_handlers(loop, stop)
    readiness = threading.Event()

    store = await asyncio.to_thread(open_store, config)
    _, gport = parse_host_port(config.collector.otlp_grpc)
    _, hport = parse_host_port(config.collector.otlp_http)
    receivers = await _start_receivers(config, store, gport, hport)

    qhost, qport = parse_host_port(config.query.http)
    qsock = _bind_tcp(qhost, qport, reuse_port=False)
    query_port = qsock.getsockname()[1]
    app = create_app(config, store, readiness)
    from spanlake.query.grpc_api import start_query_grpc

    qghost, qgport = parse_host_port(config.query.query_grpc)
    query_grpc, query_grpc_port = await start_query_grpc(qghost, qgport, app.state.query_service)
    query_server = _Uvicorn(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    query_task = asyncio.create_task(query_server.serve(sockets=[qsock]))
    while not query_server.started:
        if query_task.done():
            await query_task
            return 1
        await asyncio.sleep(0.01)

    addresses = {
        "otlp-grpc": _display(parse_host_port(config.collector.otlp_grpc)[0], receivers.grpc_port),
        "otlp-http": _display(parse_host_port(config.collector.otlp_http)[0], receivers.http_port),
        "http": _display(qhost, query_port),
        "query-grpc": _display(qghost, query_grpc_port),
    }
    workers, relay = _start_workers(config, receivers.grpc_port, receivers.http_port,
                                    receivers.aggregation.service_graph if receivers.aggregation else None)
    for name, addr in addresses.items():
        # A plain line for people and scripts; the JSON log line for log pipelines.
        print(f"spanlake: {name} listening on {addr}", flush=True)
        log.info("listening", extra={"listener": name, "address": addr})
    readiness.set()
    log.info("ready", extra={"data": config.storage.data_dir, "workers": config.collector.workers})

    demo = None
    if config.server.demo:
        from spanlake.demo import DemoTraffic

        demo = DemoTraffic(addresses["otlp-grpc"], rate=config.server.demo_rate)
        demo.start()
        log.info("demo traffic started", extra={"rate": config.server.demo_rate})

    await stop.wait()
    log.info("shutting down")
    readiness.clear()
    if demo is not None:
        await asyncio.to_thread(demo.stop)
    for proc in workers:
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
    await receivers.stop_listeners()
    # The workers' last halves reach the graph before its last pass: wait for their pipes to
    # close (each worker closes its pipe after its aggregation's final pass), then for them.
    if relay is not None:
        await asyncio.to_thread(relay.close, 30)
    await asyncio.to_thread(_join_workers, workers, 30)
    await receivers.close_aggregation()
    query_server.should_exit = True
    with contextlib.suppress(Exception):
        await asyncio.wait_for(query_task, 10)
    await query_grpc.stop(5)
    await asyncio.to_thread(store.close)
    log.info("stopped")
    return 0


def _start_workers(config: Config, grpc_port: int, http_port: int,
                   graph: Any = None) -> tuple[list[multiprocessing.Process], Any]:
    """Start ``workers - 1`` receiver processes; with a service graph, also the relay that
    takes their unpaired halves into ``graph`` (one one-way pipe per worker)."""
    ctx = multiprocessing.get_context("spawn")
    procs, pipes = [], {}
    for i in range(1, config.collector.workers):
        reader = writer = None
        if graph is not None:
            reader, writer = ctx.Pipe(duplex=False)
        p = ctx.Process(
            target=worker_main,
            args=(config.model_dump(), grpc_port, http_port, i, writer),
            name=f"spanlake-worker-{i}",
            daemon=False,
        )
        p.start()
        procs.append(p)
        if reader is not None and writer is not None:
            writer.close()  # the worker holds the only write end: its exit is the relay's EOF
            pipes[reader] = f"worker-{i}"
    relay = None
    if pipes:
        from spanlake.collector.servicegraph_relay import HalfRelay

        relay = HalfRelay(graph, pipes)
    return procs, relay


def _join_workers(procs: list[multiprocessing.Process], timeout: float) -> None:
    """Wait for the workers to exit; one still running after ``timeout`` is killed."""
    for proc in procs:
        proc.join(timeout)
        if proc.is_alive():
            log.error("worker did not stop; killing it", extra={"pid": proc.pid})
            proc.kill()
            proc.join(5)
        elif proc.exitcode:
            log.warning("worker exited with an error", extra={"pid": proc.pid, "exitcode": proc.exitcode})


def worker_main(config_doc: dict, grpc_port: int, http_port: int, index: int, halves: Any = None) -> None:
    """Entry point of a receiver worker process (OTLP receivers and a store writer, no query).
    ``halves`` is the write end of the pipe its service graph forwards unpaired halves on."""
    config = Config.model_validate(config_doc)
    setup_logging(config.server.log_level)
    sys.exit(asyncio.run(_serve_worker(config, grpc_port, http_port, index, halves)))


async def _serve_worker(config: Config, grpc_port: int, http_port: int, index: int, halves: Any = None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    _install_stop_handlers(loop, stop)
    sender = None
    if halves is not None:
        from spanlake.collector.servicegraph_relay import HalfSender

        sender = HalfSender(halves)
    try:
        store = await asyncio.to_thread(open_store, config, maintenance=False)
        receivers = await _start_receivers(config, store, grpc_port, http_port, forward_halves=sender)
        log.info("worker ready", extra={"worker": index, "pid": os.getpid()})
        await stop.wait()
        await receivers.stop()  # the aggregation's last pass forwards the last halves
    finally:
        if sender is not None:
            sender.close()
    await asyncio.to_thread(store.close)
    log.info("worker stopped", extra={"worker": index})
    return 0


def serve(config: Config) -> int:
    """Run until SIGINT/SIGTERM; returns the process exit code."""
    setup_logging(config.server.log_level)
    log.info("starting", extra={"version": _version(), "pid": os.getpid()})
    try:
        return asyncio.run(_serve_main(config))
    except OSError as e:
        log.error("cannot start", extra={"error": str(e)})
        print(f"spanlake: cannot start: {e}", file=sys.stderr)
        return 1


def _version() -> str:
    from spanlake import __version__

    return __version__
