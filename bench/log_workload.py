"""Realistic pre-serialized OTLP log requests, shaped as the SDKs send them.

512 records per request (the SDK's ``BatchLogRecordProcessor`` default export batch) from one
service (the 12 resource attributes of :mod:`bench.workload`, one scope), string bodies of
about 60-120 characters from a few hundred templates, INFO mostly with some DEBUG, WARN and
ERROR, 3-6 attributes per record, a trace and span id on 80% of them (logs written inside a
span), a structured (map) body on 2%.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValueList

from bench.workload import ROUTES, SERVICES, _kv, resource_attributes

RECORDS_PER_REQUEST = 512
SEVERITIES = [(9, "INFO")] * 14 + [(5, "DEBUG")] * 3 + [(13, "WARN")] * 2 + [(17, "ERROR")]
TEMPLATES = [
    "GET {route} completed with status {status} in {ms} ms",
    "cache miss for key k{n}; loading from the database",
    "user user-{n} added item {item} to the cart",
    "retrying request to {peer} (attempt {attempt} of 3): connection reset by peer",
    "payment authorised for order {order} amount {ms}.00 EUR",
    "slow query on t{n}: {ms} ms (threshold 100 ms)",
    "order {order} moved to state SHIPPED",
    "token refresh for session s{n} succeeded",
]
LOGGERS = ["app.handlers", "app.db", "app.cache", "app.payments", "uvicorn.access", "app.orders"]


def make_log_request(rng: random.Random, records: int = RECORDS_PER_REQUEST,
                     start_ns: int = 1_790_000_000_000_000_000) -> ExportLogsServiceRequest:
    service = rng.choice(SERVICES)
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(resource_attributes(rng, service))
    rl.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    sl = rl.scope_logs.add()
    sl.scope.name = "opentelemetry.sdk._logs"
    t = start_ns + rng.randrange(3_600_000_000_000)
    trace_id, span_id = rng.randbytes(16), rng.randbytes(8)
    for _ in range(records):
        rec = sl.log_records.add()
        t += rng.randrange(10_000, 5_000_000)
        rec.time_unix_nano = t
        rec.observed_time_unix_nano = t + rng.randrange(1_000, 100_000)
        rec.severity_number, rec.severity_text = rng.choice(SEVERITIES)
        if rng.random() < 0.02:
            rec.body.kvlist_value.CopyFrom(KeyValueList(values=[
                _kv("event", "checkout"), _kv("order", rng.randrange(100_000)), _kv("ok", rng.random() < 0.9)]))
        else:
            rec.body.string_value = rng.choice(TEMPLATES).format(
                route=rng.choice(ROUTES), status=rng.choice((200, 200, 200, 404, 500)), ms=rng.randrange(1, 900),
                n=rng.randrange(10_000), item=rng.randrange(5_000), peer=rng.choice(SERVICES),
                attempt=rng.randint(1, 3), order=rng.randrange(1_000_000))
        if rng.random() < 0.8:
            if rng.random() < 0.2:  # a new span, sometimes a new trace
                span_id = rng.randbytes(8)
                if rng.random() < 0.3:
                    trace_id = rng.randbytes(16)
            rec.trace_id, rec.span_id, rec.flags = trace_id, span_id, 1
        attrs = [_kv("code.namespace", rng.choice(LOGGERS)), _kv("code.lineno", rng.randrange(20, 900)),
                 _kv("thread.name", f"worker-{rng.randrange(8)}")]
        if rng.random() < 0.5:
            attrs.append(_kv("enduser.id", f"user-{rng.randrange(10_000)}"))
        if rng.random() < 0.3:
            attrs.append(_kv("http.route", rng.choice(ROUTES)))
        if rng.random() < 0.1:
            attrs.append(_kv("exception.type", "TimeoutError"))
        rec.attributes.extend(attrs)
    return req


def make_log_requests(count: int, seed: int = 7, records: int = RECORDS_PER_REQUEST) -> list[bytes]:
    rng = random.Random(seed)
    return [make_log_request(rng, records).SerializeToString() for _ in range(count)]

