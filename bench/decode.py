"""Micro-benchmark of the OTLP trace decoder (protobuf bytes -> SpanBatch).

Builds realistic pre-serialized export requests (512 spans, about 10 attributes per span with
the repetition real services show, 12 resource attributes, events on about a fifth of the
spans, links on a few) with the official protobuf classes, then prints spans/s of
``decode_export_trace_request`` beside ``ParseFromString`` alone, measured in the same run (they
take turns run by run). Figures are medians of several runs, per CPU second of the process
(what "per core" means) and per wall-clock second; machines are shared and noisy, so compare
the decoder with the baseline rather than with figures from another day.

    python bench/decode.py [--spans 512] [--requests 20] [--runs 7] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import time
import uuid
from typing import Callable

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from spanlake.collector.decode_traces import decode_export_trace_request
from spanlake.collector.otlp_json import decode_traces_json

ROUTES = [f"/api/v1/{r}/{{id}}" for r in ("orders", "users", "carts", "items", "payments", "search", "auth")]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
]
STATEMENTS = [
    "SELECT o.id, o.status, o.total, o.created_at, c.name, c.email FROM orders o "
    "JOIN customers c ON c.id = o.customer_id WHERE o.id = $1 AND o.deleted_at IS NULL",
    "UPDATE carts SET updated_at = now(), total = $2 WHERE id = $1",
    "SELECT * FROM items WHERE sku = ANY($1)",
]


def _kv(key: str, value: object) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = str(value)
    return kv


def _server_attrs(rng: random.Random) -> list[KeyValue]:
    route = rng.choice(ROUTES)
    status = rng.choice((200, 200, 200, 200, 201, 404, 500))
    return [
        _kv("http.request.method", rng.choice(("GET", "GET", "POST", "PUT"))),
        _kv("http.route", route),
        _kv("url.path", route.replace("{id}", str(rng.randrange(10**6)))),
        _kv("url.scheme", "https"),
        _kv("http.response.status_code", status),
        _kv("server.address", "api.internal"),
        _kv("server.port", 8443),
        _kv("client.address", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"),
        _kv("user_agent.original", rng.choice(AGENTS)),
        _kv("network.protocol.version", "1.1"),
        _kv("http.response.body.size", rng.randrange(100, 50_000)),
    ]


def _client_attrs(rng: random.Random) -> list[KeyValue]:
    return [
        _kv("db.system", "postgresql"),
        _kv("db.namespace", "shop"),
        _kv("db.operation.name", rng.choice(("SELECT", "UPDATE"))),
        _kv("db.query.text", rng.choice(STATEMENTS)),
        _kv("server.address", "pg-primary.internal"),
        _kv("server.port", 5432),
        _kv("db.response.returned_rows", rng.randrange(50)),
        _kv("peer.service", "postgres"),
        _kv("thread.name", f"worker-{rng.randrange(16)}"),
    ]


def _internal_attrs(rng: random.Random) -> list[KeyValue]:
    return [
        _kv("code.function.name", rng.choice(("load_order", "price_cart", "check_stock"))),
        _kv("code.file.path", "/srv/app/shop/service.py"),
        _kv("code.line.number", rng.randrange(1, 900)),
        _kv("order.id", str(uuid.UUID(int=rng.getrandbits(128)))),
        _kv("cache.hit", rng.random() < 0.8),
        _kv("items.count", rng.randrange(1, 20)),
        _kv("cart.total", round(rng.random() * 500, 2)),
        _kv("tenant", rng.choice(("acme", "globex", "initech"))),
        _kv("feature.flags", "new-checkout,fast-search"),
        _kv("thread.name", f"worker-{rng.randrange(16)}"),
    ]


def make_request(n_spans: int = 512, seed: int = 0) -> ExportTraceServiceRequest:
    """One export request shaped like an SDK's batch: one resource, one scope, n spans."""
    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in [
        ("service.name", "checkout"),
        ("service.namespace", "shop"),
        ("service.version", "4.2.1"),
        ("service.instance.id", "5f1c2a9e-8d3b-4c1e-9a7f-0b6d4e2c8a11"),
        ("deployment.environment.name", "production"),
        ("host.name", "checkout-7d9f8b6c5-x2v4q"),
        ("host.arch", "amd64"),
        ("os.type", "linux"),
        ("process.pid", 4242),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.version", "1.45.1"),
    ]:
        rs.resource.attributes.append(_kv(k, v))
    rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.flask"
    ss.scope.version = "0.47b0"
    t0 = 1_700_000_000_000_000_000
    trace_id = rng.randbytes(16)
    parent = b""
    for i in range(n_spans):
        if i % 8 == 0:
            trace_id, parent = rng.randbytes(16), b""
        span_id = rng.randbytes(8)
        kind = (Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL)[i % 3]
        attrs = {Span.SPAN_KIND_SERVER: _server_attrs, Span.SPAN_KIND_CLIENT: _client_attrs}.get(
            kind, _internal_attrs
        )(rng)
        start = t0 + i * 1_000_000 + rng.randrange(1000)
        span = ss.spans.add(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent,
            flags=0x100 | 1,
            name=("GET " + rng.choice(ROUTES)) if kind == Span.SPAN_KIND_SERVER else f"op-{i % 17}",
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=start + rng.randrange(10_000, 5_000_000),
            attributes=attrs,
        )
        parent = span_id
        if rng.random() < 0.2:
            ev = span.events.add(time_unix_nano=start + 5000, name="cache.miss")
            ev.attributes.append(_kv("cache.key", f"order:{rng.randrange(10**6)}"))
            ev.attributes.append(_kv("cache.tier", "l2"))
        if rng.random() < 0.05:
            span.status.code = Status.STATUS_CODE_ERROR
            span.status.message = "upstream timed out"
            ev = span.events.add(time_unix_nano=start + 9000, name="exception")
            ev.attributes.append(_kv("exception.type", "TimeoutError"))
            ev.attributes.append(_kv("exception.message", "upstream timed out after 5s"))
            ev.attributes.append(
                _kv("exception.stacktrace", 'Traceback (most recent call last):\n  File "app.py", line 42\n' * 3)
            )
        if rng.random() < 0.03:
            link = span.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), flags=0x101)
            link.attributes.append(_kv("link.reason", "batch-item"))
    return req


def _rate(fn: Callable[[bytes], object], payloads: list[bytes], n_spans: int) -> tuple[float, float]:
    """(spans per CPU second of this process, spans per wall-clock second) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    for p in payloads:
        fn(p)
    n = n_spans * len(payloads)
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def _paired_rates(
    fns: list[Callable[[bytes], object]], payloads: list[list[bytes]], n_spans: int, runs: int
) -> list[list[tuple[float, float]]]:
    """Rates of each function per run; the functions take turns so that load hits all alike."""
    rates: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(runs):
        for out, fn, data in zip(rates, fns, payloads):
            out.append(_rate(fn, data, n_spans))
    return rates


def _otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON of a request: proto3 JSON with hex ids."""
    doc = json_format.MessageToDict(request)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(doc).encode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=512, help="spans per request")
    ap.add_argument("--requests", type=int, default=20, help="distinct requests per run")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true", help="also time the OTLP/JSON decoder")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the decoder instead")
    args = ap.parse_args()

    reqs = [make_request(args.spans, seed) for seed in range(args.requests)]
    payloads = [r.SerializeToString() for r in reqs]
    warmup = [make_request(args.spans, -seed - 1).SerializeToString() for seed in range(3)]
    nbytes = sum(map(len, payloads)) / len(payloads) / args.spans
    n_attrs = sum(len(s.attributes) for r in reqs for s in r.resource_spans[0].scope_spans[0].spans)
    n_events = sum(len(s.events) for r in reqs for s in r.resource_spans[0].scope_spans[0].spans)
    print(
        f"request: {args.spans} spans, {n_attrs / args.spans / len(reqs):.1f} attributes/span, "
        f"{n_events / args.spans / len(reqs):.2f} events/span, 12 resource attributes, "
        f"{nbytes:.0f} bytes/span on the wire; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    # Warm up with other requests: the resource cache is warm, as in a long-running receiver,
    # but values that differ per request are not cached from the timed payloads.
    for p in warmup:
        decode_export_trace_request(p)
    if args.profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            for p in payloads * 3:
                decode_export_trace_request(p)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
        return

    fns: list[Callable[[bytes], object]] = [ExportTraceServiceRequest.FromString, decode_export_trace_request]
    data = [payloads, payloads]
    if args.json:
        fns.append(decode_traces_json)
        data.append([_otlp_json(r) for r in reqs])
    rates = _paired_rates(fns, data, args.spans, args.runs)

    def median(i: int, clock: int) -> float:
        return statistics.median(r[clock] for r in rates[i])

    # CPU time of this process is what "per core" means, and shared machines steal wall time.
    ratio = statistics.median(d[0] / b[0] for d, b in zip(rates[1], rates[0]))
    print(f"{'spans/s, median of ' + str(args.runs) + ' runs':34s} {'per CPU second':>15s} {'per wall second':>16s}")
    print(f"{'ParseFromString alone (baseline)':34s} {median(0, 0):>15,.0f} {median(0, 1):>16,.0f}")
    print(f"{'decode_export_trace_request':34s} {median(1, 0):>15,.0f} {median(1, 1):>16,.0f}")
    if args.json:
        print(f"{'decode_traces_json (OTLP/JSON)':34s} {median(2, 0):>15,.0f} {median(2, 1):>16,.0f}")
    print(f"decode / baseline: {ratio:.1%} (median of the paired runs, CPU time)")


if __name__ == "__main__":
    main()
