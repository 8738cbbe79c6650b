"""Realistic pre-serialized OTLP trace requests, shaped as the SDKs send them.

512 spans per request from one service (12 resource attributes, one scope), trees of
client/server spans, about 10 attributes per span drawn from semantic conventions with
realistic cardinality, exception events on a few spans, links on a few.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SERVICES = ["frontend", "api-gateway", "auth", "catalog", "cart", "checkout", "payment", "inventory"]
ROUTES = ["/api/cart", "/api/checkout", "/api/products/{id}", "/api/login", "/api/orders/{id}", "/health"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
DB_STATEMENTS = [f"SELECT * FROM t{i} WHERE id = $1" for i in range(40)]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def resource_attributes(rng: random.Random, service: str) -> list[KeyValue]:
    """The resource of one instance of ``service`` on one of 20 nodes, as an SDK reports it."""
    host = f"node-{rng.randrange(20)}"
    return [
        _kv("service.name", service), _kv("service.version", "1.4.2"), _kv("service.namespace", "shop"),
        _kv("service.instance.id", f"{service}-{rng.randrange(4)}"), _kv("deployment.environment.name", "production"),
        _kv("host.name", host), _kv("host.id", host + "-id"), _kv("host.arch", "amd64"), _kv("os.type", "linux"),
        _kv("telemetry.sdk.name", "opentelemetry"), _kv("telemetry.sdk.language", "python"),
        _kv("telemetry.sdk.version", "1.45.1"),
    ]


def make_request(rng: random.Random, spans_per_request: int = 512, start_ns: int = 1_790_000_000_000_000_000
                 ) -> ExportTraceServiceRequest:
    service = rng.choice(SERVICES)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(resource_attributes(rng, service))
    rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.fastapi"
    ss.scope.version = "0.66b1"
    t = start_ns + rng.randrange(3_600_000_000_000)
    made = 0
    while made < spans_per_request:
        trace_id = rng.randbytes(16)
        root_id = rng.randbytes(8)
        n = min(spans_per_request - made, rng.randint(4, 16))
        parents = [root_id]
        for i in range(n):
            sid = root_id if i == 0 else rng.randbytes(8)
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = sid
            if i:
                span.parent_span_id = rng.choice(parents)
                parents.append(sid)
            route = rng.choice(ROUTES)
            is_db = i and rng.random() < 0.3
            span.name = (DB_STATEMENTS[rng.randrange(40)].split(" WHERE")[0] if is_db else f"{rng.choice(METHODS)} {route}")
            span.kind = Span.SPAN_KIND_CLIENT if is_db else (Span.SPAN_KIND_SERVER if i == 0 else Span.SPAN_KIND_INTERNAL)
            s = t + i * 1000
            span.start_time_unix_nano = s
            span.end_time_unix_nano = s + rng.randrange(50_000, 80_000_000)
            span.flags = 0x101
            error = rng.random() < 0.02
            if is_db:
                span.attributes.extend([
                    _kv("db.system", "postgresql"), _kv("db.name", "shop"),
                    _kv("db.statement", DB_STATEMENTS[rng.randrange(40)]), _kv("server.address", "pg-primary"),
                    _kv("server.port", 5432), _kv("peer.service", "postgres"), _kv("db.operation", "SELECT"),
                    _kv("db.rows_affected", rng.randrange(100)), _kv("thread.id", rng.randrange(64)),
                    _kv("code.function", "fetch"),
                ])
            else:
                span.attributes.extend([
                    _kv("http.request.method", rng.choice(METHODS)), _kv("http.route", route),
                    _kv("url.path", route.replace("{id}", str(rng.randrange(5000)))),
                    _kv("http.response.status_code", 500 if error else 200), _kv("url.scheme", "http"),
                    _kv("server.address", service), _kv("server.port", 8080),
                    _kv("network.protocol.version", "1.1"), _kv("user_agent.original", "Mozilla/5.0"),
                    _kv("enduser.id", f"user-{rng.randrange(10_000)}"),
                ])
            if error:
                span.status.code = Status.STATUS_CODE_ERROR
                span.status.message = "upstream failed"
                ev = span.events.add(time_unix_nano=s + 10, name="exception")
                ev.attributes.extend([_kv("exception.type", "TimeoutError"),
                                      _kv("exception.message", "upstream timed out after 30s"),
                                      _kv("exception.stacktrace", "Traceback (most recent call last): ...")])
            elif rng.random() < 0.05:
                ev = span.events.add(time_unix_nano=s + 20, name="cache.miss")
                ev.attributes.extend([_kv("cache.key", f"k{rng.randrange(1000)}")])
            if rng.random() < 0.01:
                span.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
        made += n
        t += rng.randrange(1_000_000, 100_000_000)
    return req


def make_requests(count: int, seed: int = 7, spans_per_request: int = 512) -> list[bytes]:
    rng = random.Random(seed)
    return [make_request(rng, spans_per_request).SerializeToString() for _ in range(count)]
