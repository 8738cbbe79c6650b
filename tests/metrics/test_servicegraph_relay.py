"""Service-graph pairing across processes: worker graphs forward their unpaired halves (through
the real pipe encoding) to the main graph, and every edge is counted once, whichever graph
each half reached."""

from __future__ import annotations

import multiprocessing
import os
import time

import pyarrow as pa
import pytest

from spanlake.collector.servicegraph import HALF_SCHEMAS, ServiceGraph
from spanlake.collector.servicegraph_relay import HalfRelay, HalfSender, decode_halves, encode_halves
from spanlake.metrics_model import (
    SERVICE_GRAPH_CLIENT,
    SERVICE_GRAPH_FAILED,
    SERVICE_GRAPH_REQUESTS,
    SERVICE_GRAPH_SERVER,
    SERVICE_GRAPH_UNPAIRED,
)
from spanlake.model import SpanBatch
from tests.metrics.builders import (
    CLIENT, CONSUMER, PRODUCER, SEC, SERVER, Clock, batch, by_labels, collected, edge, span,
)


def _summed(rows: list[dict], metric: str, field: str = "value") -> dict[tuple, float]:
    """Rows of all graphs added up per label set, as readers of the store do."""
    out: dict[tuple, float] = {}
    for r in rows:
        if r["metric"] == metric:
            key = tuple(sorted(r["labels"].items()))
            out[key] = out.get(key, 0) + r[field]
    return out


def _until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _topology(n: int) -> list[tuple[str, list]]:
    """``n`` traces of frontend -> cart (error on the server side) -> carts db and -> queue ->
    worker, as (service, spans) requests; each call's halves are in different requests."""
    requests: list[tuple[str, list]] = []
    for i in range(n):
        tid = os.urandom(16)
        root = span(tid, "GET /checkout", SERVER, 50)
        call = span(tid, "POST cart", CLIENT, 30, parent=root)
        serve = span(tid, "POST /cart", SERVER, 25, parent=call, error=(i % 4 == 0))
        query = span(tid, "SELECT", CLIENT, 2, parent=serve, db__system="postgresql", db__name="carts")
        publish = span(tid, "publish", PRODUCER, 1, parent=serve)
        consume = span(tid, "consume", CONSUMER, 80, parent=publish)
        requests += [("frontend", [root, call]), ("cart", [serve, query]), ("cart", [publish]),
                     ("worker", [consume])]
    return requests


def _want(n: int) -> dict[tuple, float]:
    return {
        edge("user", "frontend", "virtual_node"): n,
        edge("frontend", "cart"): n,
        edge("cart", "carts", "database"): n,
        edge("cart", "worker", "messaging_system"): n,
    }


def test_halves_split_over_three_processes_pair_exactly_once() -> None:
    clock = Clock()
    main = ServiceGraph(wait_ns=10 * SEC, clock=clock)
    workers = [ServiceGraph(wait_ns=10 * SEC, clock=clock) for _ in range(2)]
    pipes = {}
    for i, w in enumerate(workers):
        reader, writer = multiprocessing.Pipe(duplex=False)
        w.forward_to(HalfSender(writer))
        pipes[reader] = f"worker-{i + 1}"
    relay = HalfRelay(main, pipes)
    try:
        graphs = [main, *workers]
        n = 40
        for k, (service, spans) in enumerate(_topology(n)):
            graphs[(k * 7 + k // 3) % 3].observe(batch(service, spans))  # scatter the requests
        assert all(w.pending == 0 for w in workers)  # a worker never keeps a half
        _until(lambda: main._inbox)  # noqa: SLF001 - the relay delivered something
        time.sleep(0.2)
        main.expire()
        _until(lambda: (main.expire(), main.pending == 0)[1])
        rows = collected(main, *workers)
        assert _summed(rows, SERVICE_GRAPH_REQUESTS.name) == _want(n)
        assert _summed(rows, SERVICE_GRAPH_FAILED.name)[edge("frontend", "cart")] == n // 4
        assert _summed(rows, SERVICE_GRAPH_CLIENT.name, "count")[edge("frontend", "cart")] == n
        assert _summed(rows, SERVICE_GRAPH_SERVER.name, "count")[edge("cart", "worker", "messaging_system")] == n
        clock.now += 11 * SEC
        main.expire()
        assert by_labels(collected(main, *workers), SERVICE_GRAPH_UNPAIRED.name) == {}
    finally:
        for w in workers:
            w._forward.close()  # noqa: SLF001 - the worker's end of the pipe
        relay.close(5)


def test_worker_pairs_what_one_pass_holds_and_forwards_only_the_rest() -> None:
    sent: list[tuple[pa.Table, pa.Table]] = []
    worker = ServiceGraph(clock=Clock())
    worker.forward_to(lambda c, s: sent.append((c, s)))
    tid = os.urandom(16)
    call = span(tid, "POST cart", CLIENT, 30)
    lone = span(tid, "GET stock", CLIENT, 3)
    worker.observe(SpanBatch.concat([batch("frontend", [call, lone]),
                                     batch("cart", [span(tid, "POST /cart", SERVER, 25, parent=call)])]))
    # the pair in the pass is counted here; only the call still waiting for its server goes
    assert _summed(collected(worker), SERVICE_GRAPH_REQUESTS.name) == {edge("frontend", "cart"): 1}
    assert len(sent) == 1 and sent[0][0].num_rows == 1 and sent[0][1].num_rows == 0
    assert sent[0][0].column("key").to_pylist() == [bytes(lone.span_id)]
    assert worker.pending == 0
    worker.expire()  # nothing waits in a forwarding graph, so nothing expires there
    assert len(sent) == 1 and collected(worker) == []


def test_forwarding_failure_falls_back_to_local_pairing(caplog) -> None:
    clock = Clock()
    worker = ServiceGraph(wait_ns=5 * SEC, clock=clock)

    def broken(c, s):
        raise BrokenPipeError("main process gone")

    worker.forward_to(broken)
    tid = os.urandom(16)
    call = span(tid, "POST cart", CLIENT, 30)
    worker.observe(batch("frontend", [call]))
    assert worker.pending == 1 and "pairing in this process" in caplog.text
    worker.observe(batch("cart", [span(tid, "POST /cart", SERVER, 25, parent=call)]))
    assert _summed(collected(worker), SERVICE_GRAPH_REQUESTS.name) == {edge("frontend", "cart"): 1}


def test_received_halves_wait_from_their_arrival_and_expire_as_unpaired() -> None:
    clock = Clock()
    main = ServiceGraph(wait_ns=5 * SEC, clock=clock)
    halves: list = []
    worker = ServiceGraph(clock=lambda: 0)  # the worker's clock is not the main's
    worker.forward_to(lambda c, s: halves.append(decode_halves(encode_halves(c, s))))
    tid = os.urandom(16)
    worker.observe(batch("frontend", [span(tid, "GET legacy", CLIENT, 7, peer__service="legacy")]))
    worker.observe(batch("audit", [span(tid, "POST /audit", SERVER, 1, parent=span(tid, "x", CLIENT, 1))]))
    for c, s in halves:
        main.receive(c, s)
    main.expire()
    assert main.pending == 2
    clock.now += 4 * SEC
    main.expire()
    assert main.pending == 2
    clock.now += 2 * SEC
    main.expire()
    rows = collected(main)
    assert _summed(rows, SERVICE_GRAPH_REQUESTS.name) == {edge("frontend", "legacy", "virtual_node"): 1}
    assert _summed(rows, SERVICE_GRAPH_UNPAIRED.name) == {(("client", "frontend"),): 1, (("server", "audit"),): 1}


def test_encoding_round_trip_and_bad_messages() -> None:
    empty = tuple(schema.empty_table() for schema in HALF_SCHEMAS)
    c, s = decode_halves(encode_halves(*empty))
    assert c.num_rows == 0 and s.num_rows == 0 and (c.schema, s.schema) == HALF_SCHEMAS
    for bad in (b"", b"\x05\x00\x00\x00\x00\x00\x00\x00abc", b"\x03\x00\x00\x00\x00\x00\x00\x00abcdef"):
        with pytest.raises(ValueError):
            decode_halves(bad)


def test_relay_survives_a_dead_worker_and_a_bad_message(caplog) -> None:
    main = ServiceGraph(clock=Clock())
    r1, w1 = multiprocessing.Pipe(duplex=False)
    r2, w2 = multiprocessing.Pipe(duplex=False)
    relay = HalfRelay(main, {r1: "worker-1", r2: "worker-2"})
    w1.send_bytes(b"not arrow")
    w1.close()  # worker 1 dies
    tid = os.urandom(16)
    sender = HalfSender(w2)
    worker = ServiceGraph(clock=Clock())
    worker.forward_to(sender)
    worker.observe(batch("frontend", [span(tid, "POST cart", CLIENT, 30)]))
    _until(lambda: relay.open_channels == 1 and main._inbox)  # noqa: SLF001
    assert "dropping a service-graph message" in caplog.text and "worker exited" in caplog.text
    sender.close()
    started = time.monotonic()
    relay.close(5)
    assert relay.open_channels == 0 and time.monotonic() - started < 2
    main.expire()
    assert main.pending == 1
