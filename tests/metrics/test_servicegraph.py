"""Service-graph edges for a known topology: halves split across requests, a database, a queue
hop, uninstrumented peers, expiry and the bound on waiting halves."""

from __future__ import annotations

import os
from bisect import bisect_left

from spanlake.collector.servicegraph import ServiceGraph
from spanlake.metrics_model import (
    SERVICE_GRAPH_BOUNDS_S,
    SERVICE_GRAPH_CLIENT,
    SERVICE_GRAPH_DROPPED,
    SERVICE_GRAPH_FAILED,
    SERVICE_GRAPH_REQUESTS,
    SERVICE_GRAPH_SERVER,
    SERVICE_GRAPH_UNPAIRED,
)
from tests.metrics.builders import (
    CLIENT, CONSUMER, INTERNAL, PRODUCER, SEC, SERVER, Clock, batch, by_labels, collected, edge, span,
)


def _bucket(seconds: float) -> int:
    return bisect_left(list(SERVICE_GRAPH_BOUNDS_S), seconds)


def test_topology_across_requests() -> None:
    clock = Clock()
    sg = ServiceGraph(wait_ns=10 * SEC, clock=clock)
    tid = os.urandom(16)
    # frontend: root server span, a call to cart, a call to an uninstrumented service
    root = span(tid, "GET /checkout", SERVER, 120)
    to_cart = span(tid, "POST cart", CLIENT, 30, parent=root)
    to_legacy = span(tid, "GET legacy", CLIENT, 7, parent=root, peer__service="payments-legacy")
    local = span(tid, "render", INTERNAL, 2, parent=root)
    # cart: serves the call (with an error), queries its database, publishes to a queue
    serve = span(tid, "POST /cart", SERVER, 25, parent=to_cart, error=True)
    db = span(tid, "SELECT carts", CLIENT, 3, parent=serve, db__system="postgresql", db__name="carts")
    publish = span(tid, "publish order", PRODUCER, 1, parent=serve)
    # worker: consumes the message; audit: a server span whose caller never shows up
    consume = span(tid, "process order", CONSUMER, 300, parent=publish)
    orphan = span(os.urandom(16), "POST /audit", SERVER, 1, parent=span(tid, "x", CLIENT, 1))

    # The server half of cart arrives before its client half; each service in its own request.
    sg.observe(batch("cart", [serve, db, publish]))
    assert sg.pending == 2  # cart's server half and its producer half wait
    clock.now += 2 * SEC
    sg.observe(batch("frontend", [root, to_cart, to_legacy, local]))
    assert sg.pending == 2  # frontend->cart paired; producer and legacy call wait
    clock.now += 2 * SEC
    sg.observe(batch("worker", [consume]))
    sg.observe(batch("audit", [orphan]))
    assert sg.pending == 2  # legacy call and audit's server half

    rows = collected(sg)
    requests = {k: r["value"] for k, r in by_labels(rows, SERVICE_GRAPH_REQUESTS.name).items()}
    assert requests == {
        edge("user", "frontend", "virtual_node"): 1,
        edge("frontend", "cart"): 1,
        edge("cart", "carts", "database"): 1,
        edge("cart", "worker", "messaging_system"): 1,
    }
    failed = {k: r["value"] for k, r in by_labels(rows, SERVICE_GRAPH_FAILED.name).items()}
    assert failed[edge("frontend", "cart")] == 1 and failed[edge("cart", "worker", "messaging_system")] == 0
    client = by_labels(rows, SERVICE_GRAPH_CLIENT.name)
    server = by_labels(rows, SERVICE_GRAPH_SERVER.name)
    fc = edge("frontend", "cart")
    assert client[fc]["value"] == 0.030 and client[fc]["buckets"][_bucket(0.030)] == 1 and client[fc]["count"] == 1
    assert server[fc]["value"] == 0.025 and server[fc]["buckets"][_bucket(0.025)] == 1
    assert server[edge("cart", "worker", "messaging_system")]["value"] == 0.3
    # one-sided edges only have the side that was measured
    assert edge("cart", "carts", "database") in client and edge("cart", "carts", "database") not in server
    assert edge("user", "frontend", "virtual_node") in server
    assert edge("user", "frontend", "virtual_node") not in client
    assert by_labels(rows, SERVICE_GRAPH_UNPAIRED.name) == {}

    # After the wait, the unanswered call becomes a virtual node and both leftovers count unpaired.
    clock.now += 11 * SEC
    sg.expire()
    assert sg.pending == 0
    rows = collected(sg)
    assert {k: r["value"] for k, r in by_labels(rows, SERVICE_GRAPH_REQUESTS.name).items()} == {
        edge("frontend", "payments-legacy", "virtual_node"): 1}
    assert {k: r["value"] for k, r in by_labels(rows, SERVICE_GRAPH_UNPAIRED.name).items()} == {
        (("client", "frontend"),): 1, (("server", "audit"),): 1}


def test_unknown_peer_and_pending_bound() -> None:
    clock = Clock()
    sg = ServiceGraph(wait_ns=5 * SEC, max_pending=100, clock=clock)
    tid = os.urandom(16)
    calls = [span(tid, f"call {i}", CLIENT, 1) for i in range(150)]
    sg.observe(batch("a", calls[:100]))
    clock.now += SEC
    sg.observe(batch("a", calls[100:]))
    assert sg.pending == 100
    rows = collected(sg)
    assert {k: r["value"] for k, r in by_labels(rows, SERVICE_GRAPH_DROPPED.name).items()} == {(("client", "a"),): 50}
    # the newest halves were kept: answering one of them pairs it
    sg.observe(batch("b", [span(tid, "serve", SERVER, 1, parent=calls[-1])]))
    clock.now += 10 * SEC
    sg.expire()
    rows = collected(sg)
    requests = {k: r["value"] for k, r in by_labels(rows, SERVICE_GRAPH_REQUESTS.name).items()}
    assert requests == {edge("a", "b"): 1, edge("a", "unknown", "virtual_node"): 99}


def test_cardinality_limit_applies_to_edges() -> None:
    sg = ServiceGraph(cardinality_limit=2, clock=Clock())
    sg.observe(batch("a", [span(os.urandom(16), "q", CLIENT, 1, db__system=f"db{i}") for i in range(5)]))
    requests = by_labels(collected(sg), SERVICE_GRAPH_REQUESTS.name)
    assert len(requests) == 3 and requests[(("otel_metric_overflow", "true"),)]["value"] == 3
