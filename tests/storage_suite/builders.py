"""Builders of test span batches: explicit spans for the suite, realistic ones for measurements.

A :class:`BatchBuilder` collects spans with their resource and scope and produces a
:class:`~spanlake.model.SpanBatch` exactly as the collector would (promoted attributes moved to
their columns, resource/scope ids from the model's fingerprints).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from spanlake.model import (
    PROMOTED_KEYS,
    RESOURCE_SCHEMA,
    SCOPE_SCHEMA,
    SPAN_SCHEMA,
    SpanBatch,
    encode_bool,
    encode_bytes,
    encode_double,
    encode_int,
    encode_json_any_value,
    encode_string,
    resource_fingerprint,
    scope_fingerprint,
)

BASE_NS = 1_700_000_000_000_000_000  # a fixed "now" so that tests are reproducible
MS = 1_000_000
SEC = 1_000_000_000


def enc(value: Any) -> str:
    """Encode a Python value the way the collector encodes the matching AnyValue."""
    if value is None:
        return "n"
    if isinstance(value, bool):
        return encode_bool(value)
    if isinstance(value, int):
        return encode_int(value)
    if isinstance(value, float):
        return encode_double(value)
    if isinstance(value, bytes):
        return encode_bytes(value)
    if isinstance(value, str):
        return encode_string(value)
    return encode_json_any_value(_to_json_any(value))


def _to_json_any(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_to_json_any(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _to_json_any(v)} for k, v in value.items()]}}
    raise TypeError(type(value))


def enc_attrs(attrs: dict[str, Any] | None) -> dict[str, str]:
    return {k: enc(v) for k, v in (attrs or {}).items()}


def tid(n: int | str) -> bytes:
    """A 16-byte trace id from a number or a short label."""
    if isinstance(n, str):
        return n.encode().ljust(16, b"\x00")[:16]
    return n.to_bytes(16, "big")


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


@dataclass
class ResourceSpec:
    service: str | None = "svc"
    attributes: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0
    schema_url: str = ""

    def encoded(self) -> dict[str, str]:
        out = enc_attrs(self.attributes)
        if self.service is not None:
            out["service.name"] = encode_string(self.service)
        return out

    def row(self) -> dict[str, Any]:
        attrs = self.encoded()
        rid = resource_fingerprint(sorted(attrs.items()), self.dropped, self.schema_url)
        return {
            "resource_id": rid,
            "service_name": self.service if self.service is not None else "missing-service-name",
            "attributes": list(attrs.items()),
            "dropped_attributes_count": self.dropped,
            "schema_url": self.schema_url,
        }


@dataclass
class ScopeSpec:
    name: str = "test-scope"
    version: str = "1.0.0"
    attributes: dict[str, Any] = field(default_factory=dict)
    dropped: int = 0
    schema_url: str = ""

    def row(self) -> dict[str, Any]:
        attrs = enc_attrs(self.attributes)
        scid = scope_fingerprint(self.name, self.version, sorted(attrs.items()), self.dropped, self.schema_url)
        return {
            "scope_id": scid,
            "name": self.name,
            "version": self.version,
            "attributes": list(attrs.items()),
            "dropped_attributes_count": self.dropped,
            "schema_url": self.schema_url,
        }


class BatchBuilder:
    """Accumulate spans; :meth:`build` returns a SpanBatch with the three Arrow tables."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.resources: dict[int, dict[str, Any]] = {}
        self.scopes: dict[int, dict[str, Any]] = {}

    def span(
        self,
        trace_id: bytes,
        span_id: bytes,
        parent_span_id: bytes | None = None,
        *,
        name: str = "op",
        kind: int = 1,
        start_ns: int = BASE_NS,
        duration_ns: int = 10 * MS,
        status_code: int = 0,
        status_message: str = "",
        trace_state: str = "",
        flags: int = 0,
        attributes: dict[str, Any] | None = None,
        encoded_attributes: dict[str, str] | None = None,
        dropped_attributes_count: int = 0,
        events: list[dict[str, Any]] | None = None,
        dropped_events_count: int = 0,
        links: list[dict[str, Any]] | None = None,
        dropped_links_count: int = 0,
        resource: ResourceSpec | None = None,
        scope: ScopeSpec | None = None,
        service: str | None = None,
    ) -> "BatchBuilder":
        resource = resource or ResourceSpec(service=service or "svc")
        scope = scope or ScopeSpec()
        rrow, srow = resource.row(), scope.row()
        self.resources.setdefault(rrow["resource_id"], rrow)
        self.scopes.setdefault(srow["scope_id"], srow)
        attrs = dict(encoded_attributes) if encoded_attributes is not None else enc_attrs(attributes)
        row: dict[str, Any] = {col: None for col in PROMOTED_KEYS.values()}
        for key in list(attrs):
            if key in PROMOTED_KEYS:
                row[PROMOTED_KEYS[key]] = attrs.pop(key)
        row.update(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_span_id,
            trace_state=trace_state,
            flags=flags,
            name=name,
            kind=kind,
            start_ns=start_ns,
            duration_ns=duration_ns,
            status_code=status_code,
            status_message=status_message,
            service_name=rrow["service_name"],
            resource_id=rrow["resource_id"],
            scope_id=srow["scope_id"],
            scope_name=srow["name"],
            scope_version=srow["version"],
            attributes=list(attrs.items()),
            dropped_attributes_count=dropped_attributes_count,
            events=[
                {
                    "time_ns": e.get("time_ns", start_ns),
                    "name": e.get("name", "event"),
                    "attributes": list(enc_attrs(e.get("attributes")).items()),
                    "dropped_attributes_count": e.get("dropped_attributes_count", 0),
                }
                for e in (events or [])
            ],
            dropped_events_count=dropped_events_count,
            links=[
                {
                    "trace_id": l["trace_id"],
                    "span_id": l["span_id"],
                    "trace_state": l.get("trace_state", ""),
                    "flags": l.get("flags", 0),
                    "attributes": list(enc_attrs(l.get("attributes")).items()),
                    "dropped_attributes_count": l.get("dropped_attributes_count", 0),
                }
                for l in (links or [])
            ],
            dropped_links_count=dropped_links_count,
        )
        self.spans.append(row)
        return self

    def build(self) -> SpanBatch:
        return SpanBatch(
            pa.Table.from_pylist(self.spans, schema=SPAN_SCHEMA),
            pa.Table.from_pylist(list(self.resources.values()), schema=RESOURCE_SCHEMA),
            pa.Table.from_pylist(list(self.scopes.values()), schema=SCOPE_SCHEMA),
        )


def simple_trace(label: str, start_ns: int, n: int, service: str) -> BatchBuilder:
    """One trace of ``n`` spans 1 ms apart: a root and its children."""
    b = BatchBuilder()
    for i in range(n):
        b.span(tid(label), sid(i + 1), sid(1) if i else None, name=f"{label}-{i}", start_ns=start_ns + i * MS, service=service)
    return b


# ---------------------------------------------------------------------------------------------
# Realistic batches for measurements and load (random ids, ~8 attributes, some events/links)
# ---------------------------------------------------------------------------------------------

_SERVICES = ["frontend", "cart", "checkout", "payment", "shipping", "email", "currency", "ad", "recommend", "quote"]
_ROUTES = ["/api/cart", "/api/checkout", "/api/products/{id}", "/api/recommendations", "/api/ads", "/health"]
_OPS = ["GET /api/cart", "POST /api/checkout", "GET /api/products/{id}", "grpc.Cart/GetCart", "SELECT orders", "publish"]


def realistic_resources(seed: int = 1) -> list[ResourceSpec]:
    rng = random.Random(seed)
    out = []
    for i, svc in enumerate(_SERVICES):
        out.append(
            ResourceSpec(
                service=svc,
                attributes={
                    "service.namespace": "shop",
                    "service.version": f"1.{i}.{rng.randint(0, 9)}",
                    "service.instance.id": f"{svc}-{rng.getrandbits(32):08x}",
                    "host.name": f"node-{rng.randint(1, 20)}",
                    "host.arch": "amd64",
                    "os.type": "linux",
                    "process.pid": rng.randint(100, 60000),
                    "process.runtime.name": "python",
                    "process.runtime.version": "3.11.7",
                    "telemetry.sdk.name": "opentelemetry",
                    "telemetry.sdk.language": "python",
                    "telemetry.sdk.version": "1.45.1",
                },
            )
        )
    return out


def realistic_batch(n: int, *, seed: int = 0, start_ns: int = BASE_NS, spans_per_trace: int = 16) -> SpanBatch:
    """``n`` spans shaped like SDK output: traces of ``spans_per_trace`` spans across services."""
    rng = random.Random(seed)
    resources = realistic_resources()
    scope = ScopeSpec(name="opentelemetry.instrumentation.flask", version="0.48b0")
    b = BatchBuilder()
    made = 0
    while made < n:
        trace = os.urandom(16) if seed < 0 else rng.getrandbits(128).to_bytes(16, "big")
        t0 = start_ns + rng.randint(0, 60 * SEC)
        parent: bytes | None = None
        for j in range(min(spans_per_trace, n - made)):
            span_id = rng.getrandbits(64).to_bytes(8, "big")
            res = resources[rng.randrange(len(resources))] if j else resources[0]
            op = _OPS[rng.randrange(len(_OPS))]
            attrs: dict[str, Any] = {
                "http.request.method": "GET" if rng.random() < 0.7 else "POST",
                "http.route": _ROUTES[rng.randrange(len(_ROUTES))],
                "http.response.status_code": 200 if rng.random() < 0.95 else 500,
                "url.path": f"/api/products/{rng.randint(1, 5000)}",
                "server.address": "shop.example.com",
                "network.peer.port": rng.randint(1024, 65535),
                "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
                "app.request.id": f"{rng.getrandbits(64):016x}",
            }
            events = (
                [{"time_ns": t0 + j * MS, "name": "exception", "attributes": {"exception.type": "ValueError", "exception.message": "bad input"}}]
                if rng.random() < 0.05
                else []
            )
            links = [{"trace_id": rng.getrandbits(128).to_bytes(16, "big"), "span_id": sid(rng.getrandbits(63))}] if rng.random() < 0.02 else []
            b.span(
                trace,
                span_id,
                parent,
                name=op,
                kind=2 if j == 0 else rng.choice([1, 2, 3]),
                start_ns=t0 + j * MS,
                duration_ns=rng.randint(100_000, 500 * MS),
                status_code=2 if rng.random() < 0.03 else 0,
                attributes=attrs,
                events=events,
                links=links,
                resource=res,
                scope=scope,
            )
            parent = span_id if rng.random() < 0.5 or parent is None else parent
            made += 1
    return b.build()
