"""Traces for the browser tests and ``bench/ui.py``, built as OTLP requests and sent over OTLP/HTTP.

* :func:`fixture_trace_requests`: a small, fully known trace (``ui-shop``) whose every span,
  attribute, event and link the tests check on the page, plus a second trace it links to.
* :func:`large_trace_requests`: one trace of ``n`` spans across a dozen services, shaped like
  real fan-out (nested calls, parallel children, attributes, a few errors and events), split
  into requests of at most ``per_request`` spans.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

MS = 1_000_000
SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL


def kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


@dataclass
class SpanSpec:
    span_id: int
    parent: int | None
    service: str
    name: str
    start_ms: float
    duration_ms: float
    kind: int = INTERNAL
    error: str = ""
    attributes: dict[str, object] = field(default_factory=dict)
    events: list[tuple[str, float, dict[str, object]]] = field(default_factory=list)  # name, offset ms, attrs
    links: list[tuple[bytes, int]] = field(default_factory=list)


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def build_requests(trace_id: bytes, t0_ns: int, specs: list[SpanSpec], per_request: int = 2000
                   ) -> list[ExportTraceServiceRequest]:
    """Requests grouping spans per service (one resource each), ``per_request`` spans at most."""
    requests: list[ExportTraceServiceRequest] = []
    by_service: dict[str, list[SpanSpec]] = {}
    for s in specs:
        by_service.setdefault(s.service, []).append(s)
    req, count = ExportTraceServiceRequest(), 0
    for service, group in by_service.items():
        for k in range(0, len(group), per_request):
            chunk = group[k:k + per_request]
            if count + len(chunk) > per_request and count:
                requests.append(req)
                req, count = ExportTraceServiceRequest(), 0
            rs = req.resource_spans.add()
            rs.resource.attributes.extend([kv("service.name", service), kv("host.name", f"{service}-host"),
                                           kv("service.version", "2.1.0")])
            ss = rs.scope_spans.add()
            ss.scope.name = "ui-fixture"
            ss.scope.version = "1.0"
            for s in chunk:
                start = t0_ns + int(s.start_ms * MS)
                span = ss.spans.add(
                    trace_id=trace_id, span_id=sid(s.span_id),
                    parent_span_id=sid(s.parent) if s.parent is not None else b"",
                    name=s.name, kind=s.kind, start_time_unix_nano=start,
                    end_time_unix_nano=start + int(s.duration_ms * MS),
                    attributes=[kv(k, v) for k, v in s.attributes.items()],
                    status=Status(code=Status.STATUS_CODE_ERROR, message=s.error) if s.error
                    else Status(code=Status.STATUS_CODE_OK))
                for name, offset, attrs in s.events:
                    span.events.add(time_unix_nano=start + int(offset * MS), name=name,
                                    attributes=[kv(k, v) for k, v in attrs.items()])
                for link_trace, link_span in s.links:
                    span.links.add(trace_id=link_trace, span_id=sid(link_span))
            count += len(chunk)
    if count:
        requests.append(req)
    return requests


# --- the known trace ------------------------------------------------------------------------------

FIXTURE_TRACE = bytes.fromhex("5a11ce0000000000000000000000f00d")
LINKED_TRACE = bytes.fromhex("5a11ce0000000000000000000000beef")


def fixture_specs() -> list[SpanSpec]:
    """``ui-shop`` checkout: two sequential calls, a parallel audit (off the critical path), an error."""
    return [
        SpanSpec(1, None, "ui-shop", "POST /checkout", 0, 120, SERVER,
                 attributes={"http.request.method": "POST", "http.route": "/checkout", "user.tier": "gold"}),
        SpanSpec(2, 1, "ui-shop", "reserve stock", 5, 30, CLIENT, attributes={"peer.service": "ui-stock"}),
        SpanSpec(3, 2, "ui-stock", "POST /reservations", 7, 26, SERVER,
                 attributes={"http.route": "/reservations", "stock.items": 3}),
        SpanSpec(4, 3, "ui-stock", "UPDATE stock", 10, 12, CLIENT,
                 attributes={"db.system": "postgresql", "db.statement": "UPDATE stock SET n = n - 1"}),
        SpanSpec(5, 1, "ui-shop", "audit log", 8, 10, INTERNAL, attributes={"audit.kind": "checkout"}),
        SpanSpec(6, 1, "ui-shop", "charge card", 40, 75, CLIENT, attributes={"peer.service": "ui-pay"}),
        SpanSpec(7, 6, "ui-pay", "Charge", 42, 70, SERVER, error="card declined",
                 attributes={"payment.provider": "acme", "payment.amount": 42.5, "retry": False},
                 events=[("exception", 60, {"exception.type": "CardDeclined", "exception.message": "card declined"}),
                         ("retrying", 30, {"attempt": 2})],
                 links=[(LINKED_TRACE, 1)]),
        SpanSpec(8, 7, "ui-pay", "SELECT card", 45, 8, CLIENT, attributes={"db.system": "postgresql"}),
    ]


def linked_specs() -> list[SpanSpec]:
    return [SpanSpec(1, None, "ui-fraud", "score payment", 0, 15, SERVER, attributes={"fraud.score": 7}),
            SpanSpec(2, 1, "ui-fraud", "lookup history", 2, 9, CLIENT)]


def fixture_trace_requests(t0_ns: int | None = None) -> list[ExportTraceServiceRequest]:
    t0 = t0_ns if t0_ns is not None else time.time_ns() - 5_000 * MS
    return (build_requests(FIXTURE_TRACE, t0, fixture_specs())
            + build_requests(LINKED_TRACE, t0 + 200 * MS, linked_specs()))


# --- large traces ---------------------------------------------------------------------------------

_SERVICES = [f"svc-{name}" for name in ("gateway", "auth", "catalog", "cart", "pricing", "search", "inventory",
                                        "checkout", "payment", "shipping", "email", "recommend")]
_OPS = ["GET /items/{id}", "POST /orders", "SELECT items", "cache GET", "grpc Lookup", "render", "publish",
        "HGETALL", "resolve", "validate", "INSERT events", "score"]


def large_trace_specs(n: int, seed: int = 1) -> list[SpanSpec]:
    """``n`` spans: each new span hangs under a recent span (deep, bursty trees) and fits in it."""
    rng = random.Random(seed)
    total_ms = 2_000 + n / 10
    specs = [SpanSpec(1, None, _SERVICES[0], "GET /big-page", 0, total_ms, SERVER,
                      attributes={"http.route": "/big-page", "span.count": n})]
    for i in range(2, n + 1):
        p = specs[rng.randrange(max(0, i - 60), i - 1) if rng.random() < 0.8 else rng.randrange(0, i - 1)]
        start = p.start_ms + rng.random() * p.duration_ms * 0.45
        room = p.start_ms + p.duration_ms - start
        dur = room * (0.05 + 0.85 * rng.random())  # strictly inside the parent, whatever its size
        error = "timeout" if rng.random() < 0.005 else ""
        svc = p.service if rng.random() < 0.5 else _SERVICES[rng.randrange(len(_SERVICES))]
        specs.append(SpanSpec(
            i, p.span_id, svc, _OPS[rng.randrange(len(_OPS))], start, dur,
            CLIENT if rng.random() < 0.5 else SERVER, error=error,
            attributes={"http.route": f"/r/{rng.randrange(30)}", "item.id": rng.randrange(100_000),
                        "cache.hit": rng.random() < 0.7},
            events=[("exception", dur / 2, {"exception.type": "Timeout"})] if error else []))
    return specs


def large_trace_requests(trace_id: bytes, n: int, t0_ns: int | None = None, seed: int = 1
                         ) -> list[ExportTraceServiceRequest]:
    t0 = t0_ns if t0_ns is not None else time.time_ns() - 10_000 * MS
    return build_requests(trace_id, t0, large_trace_specs(n, seed))


def send(otlp_http_url: str, requests: list[ExportTraceServiceRequest]) -> None:
    """POST each request to ``/v1/traces`` as protobuf; raise on any non-200 answer."""
    with httpx.Client(timeout=120) as client:
        for req in requests:
            r = client.post(otlp_http_url + "/v1/traces", content=req.SerializeToString(),
                            headers={"Content-Type": "application/x-protobuf"})
            r.raise_for_status()


def wait_for_trace(http_url: str, trace_id: bytes, span_count: int, timeout_s: float = 60) -> None:
    """Poll the API until the trace has ``span_count`` spans (commits are asynchronous)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        r = httpx.get(f"{http_url}/api/spanlake/v1/traces/{trace_id.hex()}/analysis", timeout=60)
        if r.status_code == 200:
            last = r.json()["spanCount"]
            if last >= span_count:
                return
        time.sleep(0.2)
    raise TimeoutError(f"trace {trace_id.hex()} has {last} of {span_count} spans after {timeout_s}s")
