"""Synthetic span batches for the query benchmark, generated column by column with numpy.

About ten spans per trace (2 to 18) over 15 services that call each other along a fixed
graph, each span with 11 to 13 attributes drawn from semantic conventions with realistic
cardinality (routes, users, statements, agents), 2% errors with exception events, a few links
and cache-miss events. Batches come out in trace start order and hold whole traces, like the
files a compacted store holds; :func:`span_batches` yields them one at a time so that memory
stays bounded at any scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.model import (
    ATTR_MAP,
    EVENT_TYPE,
    LINK_TYPE,
    RESOURCE_SCHEMA,
    SCOPE_SCHEMA,
    SPAN_SCHEMA,
    SpanBatch,
    resource_fingerprint,
    scope_fingerprint,
)

DAY_NS = 86_400 * 1_000_000_000
#: 2026-01-01T00:00:00Z: the start of the generated day.
DAY_START_NS = 1_767_225_600 * 1_000_000_000

SERVICES = [
    "frontend", "api-gateway", "auth", "catalog", "cart", "checkout", "payment", "inventory",
    "shipping", "recommendation", "search", "user", "notification", "pricing", "ad",
]
_CALLS = {
    "frontend": ["api-gateway", "auth", "catalog", "recommendation", "ad", "search"],
    "api-gateway": ["auth", "cart", "checkout", "user", "catalog"],
    "checkout": ["cart", "payment", "inventory", "shipping", "pricing", "notification"],
    "cart": ["inventory", "pricing"],
    "catalog": ["inventory", "pricing", "search"],
    "search": ["catalog"],
    "recommendation": ["catalog"],
    "user": ["notification"],
}
INSTANCES_PER_SERVICE = 4
SERVER_OPS = 8
INTERNAL_OPS = 4
DB_OPS = 3
USERS = 50_000
_METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "GET", "POST"]
_NOUNS = ["items", "orders", "users", "carts", "prices", "stock", "sessions", "quotes"]


@dataclass(frozen=True)
class Catalog:
    """Names the benchmark queries for: services, their operations, a user id."""

    services: list[str]
    server_ops: dict[str, list[str]]


def catalog() -> Catalog:
    return Catalog(SERVICES, {s: _server_ops(s) for s in SERVICES})


def _server_ops(service: str) -> list[str]:
    return [f"{_METHODS[i]} /api/{service}/{_NOUNS[i]}" for i in range(SERVER_OPS)]


def _ops_table() -> tuple[list[str], np.ndarray, np.ndarray]:
    """All span names; per service the index of its first server, internal and db op."""
    names: list[str] = []
    first = np.zeros((len(SERVICES), 3), dtype=np.int64)
    for s, svc in enumerate(SERVICES):
        first[s, 0] = len(names)
        names += _server_ops(svc)
        first[s, 1] = len(names)
        names += [f"{svc}.{verb}" for verb in ("validate", "render", "compute", "serialize")]
        first[s, 2] = len(names)
        names += [f"SELECT {svc}", f"INSERT {svc}", f"UPDATE {svc}"]
    # Median duration per operation, 0.3 to 60 ms, fixed so that latency queries have shape.
    medians = np.exp(np.random.default_rng(1).uniform(np.log(0.3e6), np.log(60e6), len(names)))
    return names, first, medians


def resources_and_scopes() -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """Resource rows (service x instance), scope rows (server, internal, db per service), and
    their ids as arrays indexed [service, instance] and [service, category]."""
    res_rows = []
    res_ids = np.zeros((len(SERVICES), INSTANCES_PER_SERVICE), dtype=np.uint64)
    for s, svc in enumerate(SERVICES):
        for i in range(INSTANCES_PER_SERVICE):
            host = f"node-{(s * 7 + i) % 20}"
            attrs = sorted({
                "service.name": "s" + svc, "service.version": "s1.4.2", "service.namespace": "sshop",
                "service.instance.id": f"s{svc}-{i}", "deployment.environment.name": "sproduction",
                "host.name": "s" + host, "host.arch": "samd64", "os.type": "slinux",
                "telemetry.sdk.name": "sopentelemetry", "telemetry.sdk.language": "spython",
                "telemetry.sdk.version": "s1.45.1", "process.pid": f"i{1000 + s * 10 + i}",
            }.items())
            rid = resource_fingerprint(attrs, 0, "https://opentelemetry.io/schemas/1.26.0")
            res_ids[s, i] = rid
            res_rows.append({"resource_id": rid, "service_name": svc, "attributes": attrs,
                             "dropped_attributes_count": 0, "schema_url": "https://opentelemetry.io/schemas/1.26.0"})
    scope_rows = []
    scope_ids = np.zeros((len(SERVICES), 3), dtype=np.uint64)
    scope_names = [("opentelemetry.instrumentation.fastapi", "0.66b1"),
                   ("shop.internal", "1.4.2"),
                   ("opentelemetry.instrumentation.psycopg", "0.66b1")]
    for s in range(len(SERVICES)):
        for c, (name, version) in enumerate(scope_names):
            sid = scope_fingerprint(name, version, [], 0, "")
            scope_ids[s, c] = sid
            if s == 0:
                scope_rows.append({"scope_id": sid, "name": name, "version": version, "attributes": [],
                                   "dropped_attributes_count": 0, "schema_url": ""})
    return (pa.Table.from_pylist(res_rows, schema=RESOURCE_SCHEMA),
            pa.Table.from_pylist(scope_rows, schema=SCOPE_SCHEMA), res_ids, scope_ids)


def span_batches(total_spans: int, spans_per_batch: int, *, seed: int = 7,
                 day_start_ns: int = DAY_START_NS) -> Iterator[SpanBatch]:
    """``total_spans`` spans in batches of about ``spans_per_batch`` (whole traces), trace
    starts spread evenly over one day, in time order."""
    rng = np.random.default_rng(seed)
    resources, scopes, res_ids, scope_ids = resources_and_scopes()
    ops = _ops_table()
    n_traces_est = max(1, total_spans // 10)
    step = DAY_NS / n_traces_est
    made = 0
    first_trace = 0
    while made < total_spans:
        want = min(spans_per_batch, total_spans - made)
        sizes = rng.integers(2, 19, size=want // 2 + 2)
        ends = np.cumsum(sizes)
        k = int(np.searchsorted(ends, want)) + 1
        sizes = sizes[:k]
        sizes[-1] -= int(ends[k - 1] - want)
        sizes = sizes[sizes > 0]
        idx = first_trace + np.arange(len(sizes))
        starts = day_start_ns + (idx * step).astype(np.int64) + rng.integers(0, int(step), len(sizes))
        spans = _spans(rng, sizes, starts, ops, res_ids, scope_ids)
        yield SpanBatch(spans, resources, scopes)
        made += spans.num_rows
        first_trace += len(sizes)


def _take(vocab: list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(vocab, pa.string()).take(pa.array(idx))


def _spans(rng: np.random.Generator, sizes: np.ndarray, trace_starts: np.ndarray,
           ops: tuple[list[str], np.ndarray, np.ndarray], res_ids: np.ndarray, scope_ids: np.ndarray) -> pa.Table:
    names, first_op, medians = ops
    n = int(sizes.sum())
    n_tr = len(sizes)
    trace_of = np.repeat(np.arange(n_tr), sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(n) - offsets[trace_of]

    trace_ids = rng.integers(0, 256, size=(n_tr, 16), dtype=np.uint8)
    span_ids = rng.integers(0, 256, size=(n, 8), dtype=np.uint8)
    parent = np.full(n, -1, dtype=np.int64)
    has_parent = pos > 0
    parent[has_parent] = offsets[trace_of[has_parent]] + (rng.random(has_parent.sum()) * pos[has_parent]).astype(np.int64)

    n_svc = len(SERVICES)
    n_calls = np.array([len(_CALLS.get(s, [])) for s in SERVICES])
    calls = np.tile(np.arange(n_svc)[:, None], (1, max(n_calls)))  # no callee: call itself
    for s, svc in enumerate(SERVICES):
        calls[s, : n_calls[s]] = [SERVICES.index(c) for c in _CALLS.get(svc, [])]
    service = np.zeros(n, dtype=np.int64)
    category = np.zeros(n, dtype=np.int64)  # 0 server (http), 1 internal, 2 db client
    start = np.zeros(n, dtype=np.int64)
    duration = np.zeros(n, dtype=np.int64)
    op = np.zeros(n, dtype=np.int64)
    roots = pos == 0
    service[roots] = np.where(rng.random(roots.sum()) < 0.7, 0, 1)
    # Children are generated level by level (a parent always precedes its children).
    for p in range(int(sizes.max())):
        at = np.nonzero(pos == p)[0]
        if p:
            par = parent[at]
            psvc = service[par]
            r = rng.random(len(at))
            callee = calls[psvc, (rng.random(len(at)) * np.maximum(n_calls[psvc], 1)).astype(np.int64)]
            cross = (r < 0.55) & (callee != psvc)
            service[at] = np.where(cross, callee, psvc)
            category[at] = np.where(cross, 0, np.where(rng.random(len(at)) < 0.5, 1, 2))
        cat = category[at]
        count = np.choose(cat, [SERVER_OPS, INTERNAL_OPS, DB_OPS])
        op[at] = first_op[service[at], cat] + (rng.random(len(at)) * count).astype(np.int64)
        dur = (medians[op[at]] * rng.lognormal(0.0, 0.7, len(at))).astype(np.int64) + 1000
        if p:
            pstart, pdur = start[parent[at]], duration[parent[at]]
            start[at] = pstart + (rng.random(len(at)) * 0.5 * pdur).astype(np.int64)
            duration[at] = np.minimum(dur, np.maximum(pdur // 2, 1000))
        else:
            start[at] = trace_starts[trace_of[at]]
            duration[at] = dur

    error = rng.random(n) < 0.02
    kind = np.choose(category, [2, 1, 3]).astype(np.uint8)
    instance = rng.integers(0, INSTANCES_PER_SERVICE, n)
    is_http = category == 0
    is_db = category == 2

    def fixed(col: np.ndarray, width: int) -> pa.Array:
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(col), [None, pa.py_buffer(col.tobytes())]).cast(pa.binary())

    tid_col = fixed(trace_ids[trace_of], 16)
    sid_col = fixed(span_ids, 8)
    parent_col = pc.if_else(pa.array(has_parent), sid_col.take(pa.array(np.maximum(parent, 0))), pa.scalar(None, pa.binary()))

    svc_names = _take(SERVICES, service)
    null_str = pa.scalar(None, pa.string())

    def only(mask: np.ndarray, values: pa.Array) -> pa.Array:
        return pc.if_else(pa.array(mask), values, null_str)

    route_idx = op - first_op[service, 0]
    methods = _take(["s" + m for m in _METHODS], np.where(is_http, route_idx, 0))
    routes = _take(["s" + x.split(" ", 1)[-1] for x in names], op)
    status = only(is_http, pc.if_else(pa.array(error), pa.scalar("i500"), pa.scalar("i200")))

    # Attribute maps: six keys per span, chosen by category.
    user = rng.integers(0, USERS, n)
    keys_by_cat = [
        ["url.path", "url.scheme", "server.address", "network.protocol.version", "user_agent.original", "enduser.id"],
        ["code.function", "code.namespace", "thread.id", "app.cache.hit", "app.items", "enduser.id"],
        ["db.name", "db.statement", "server.address", "server.port", "db.operation", "db.rows_affected"],
    ]
    vals_by_cat = [
        [_take([f"s/api/item/{i}" for i in range(5000)], rng.integers(0, 5000, n)), pa.array(["shttp"] * 1).take(pa.array(np.zeros(n, dtype=np.int64))),
         svc_names, _take(["s1.1", "s2"], rng.integers(0, 2, n)),
         _take([f"sMozilla/5.0 (agent {i})" for i in range(20)], rng.integers(0, 20, n)),
         _take([f"suser-{i}" for i in range(USERS)], user)],
        [_take([f"sfn_{i}" for i in range(100)], rng.integers(0, 100, n)), pc.binary_join_element_wise("sshop.", svc_names, ""),
         _take([f"i{i}" for i in range(64)], rng.integers(0, 64, n)), _take(["btrue", "bfalse"], rng.integers(0, 2, n)),
         _take([f"i{i}" for i in range(50)], rng.integers(0, 50, n)), _take([f"suser-{i}" for i in range(USERS)], user)],
        [pa.array(["sshop"]).take(pa.array(np.zeros(n, dtype=np.int64))),
         _take([f"sSELECT * FROM t{i} WHERE id = $1" for i in range(200)], rng.integers(0, 200, n)),
         _take(["spg-primary", "spg-replica"], rng.integers(0, 2, n)), pa.array(["i5432"]).take(pa.array(np.zeros(n, dtype=np.int64))),
         _take(["sSELECT", "sINSERT", "sUPDATE"], rng.integers(0, 3, n)), _take([f"i{i}" for i in range(100)], rng.integers(0, 100, n))],
    ]
    cat_arr = pa.array(category)
    key_slots, val_slots = [], []
    for j in range(6):
        key_slots.append(_take([keys_by_cat[c][j] for c in range(3)], category))
        v = vals_by_cat[2][j]
        v = pc.if_else(pc.equal(cat_arr, 1), vals_by_cat[1][j], v)
        v = pc.if_else(pc.equal(cat_arr, 0), vals_by_cat[0][j], v)
        val_slots.append(v)
    order = pa.array((np.arange(6)[None, :] * n + np.arange(n)[:, None]).ravel())
    keys = pa.concat_arrays(key_slots).take(order)
    values = pa.concat_arrays(val_slots).take(order)
    attributes = pa.MapArray.from_arrays(pa.array(np.arange(0, 6 * n + 1, 6, dtype=np.int32)), keys, values)

    # Events: an exception on error spans, a cache miss on 5% of the others.
    miss = ~error & (rng.random(n) < 0.05)
    has_event = error | miss
    ev_at = np.nonzero(has_event)[0]
    ev_err = error[ev_at]
    ev_attr_keys = pa.array(np.where(ev_err[:, None], np.array([["exception.type", "exception.message"]]), np.array([["cache.key", "cache.tier"]])).ravel())
    ev_attr_vals = pa.array(np.where(ev_err[:, None], np.array([["sTimeoutError", "supstream timed out after 30s"]]), np.array([["sk", "sl1"]])).ravel())
    ev_struct = pa.StructArray.from_arrays(
        [pa.array(start[ev_at] + 10_000), pa.array(np.where(ev_err, "exception", "cache.miss")),
         pa.MapArray.from_arrays(pa.array(np.arange(0, 2 * len(ev_at) + 1, 2, dtype=np.int32)), ev_attr_keys, ev_attr_vals),
         pa.array(np.zeros(len(ev_at), dtype=np.uint32))],
        fields=list(EVENT_TYPE),
    )
    events = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(has_event)]).astype(np.int32)), ev_struct)

    has_link = rng.random(n) < 0.01
    ln = int(has_link.sum())
    link_struct = pa.StructArray.from_arrays(
        [fixed(rng.integers(0, 256, (ln, 16), dtype=np.uint8), 16), fixed(rng.integers(0, 256, (ln, 8), dtype=np.uint8), 8),
         pa.array([""] * ln), pa.array(np.zeros(ln, dtype=np.uint32)),
         pa.MapArray.from_arrays(pa.array(np.zeros(ln + 1, dtype=np.int32)), pa.array([], pa.string()), pa.array([], pa.string())),
         pa.array(np.zeros(ln, dtype=np.uint32))],
        fields=list(LINK_TYPE),
    )
    links = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(has_link)]).astype(np.int32)), link_struct)

    scope_id = scope_ids[service, category]
    scope_name = _take(["opentelemetry.instrumentation.fastapi", "shop.internal", "opentelemetry.instrumentation.psycopg"], category)
    scope_version = _take(["0.66b1", "1.4.2", "0.66b1"], category)
    zeros32 = pa.array(np.zeros(n, dtype=np.uint32))
    cols = {
        "trace_id": tid_col,
        "span_id": sid_col,
        "parent_span_id": parent_col,
        "trace_state": pa.array([""]).take(pa.array(np.zeros(n, dtype=np.int64))),
        "flags": pa.array(np.full(n, 0x101, dtype=np.uint32)),
        "name": _take(names, op),
        "kind": pa.array(kind),
        "start_ns": pa.array(start),
        "duration_ns": pa.array(duration),
        "status_code": pa.array(np.where(error, 2, np.where(is_http, 1, 0)).astype(np.uint8)),
        "status_message": pc.if_else(pa.array(error), pa.scalar("upstream failed"), pa.scalar("")),
        "service_name": svc_names,
        "resource_id": pa.array(res_ids[service, instance]),
        "scope_id": pa.array(scope_id),
        "scope_name": scope_name,
        "scope_version": scope_version,
        "attributes": attributes.cast(ATTR_MAP),
        "attr_http_request_method": only(is_http, methods),
        "attr_http_method": pa.nulls(n, pa.string()),
        "attr_http_route": only(is_http, routes),
        "attr_http_response_status_code": status,
        "attr_http_status_code": pa.nulls(n, pa.string()),
        "attr_db_system": only(is_db, pa.array(["spostgresql"]).take(pa.array(np.zeros(n, dtype=np.int64)))),
        "attr_peer_service": only(is_db, pa.array(["spostgres"]).take(pa.array(np.zeros(n, dtype=np.int64)))),
        "attr_rpc_service": pa.nulls(n, pa.string()),
        "attr_error_type": only(error, pa.array(["sTimeoutError"]).take(pa.array(np.zeros(n, dtype=np.int64)))),
        "dropped_attributes_count": zeros32,
        "events": events,
        "dropped_events_count": zeros32,
        "links": links,
        "dropped_links_count": zeros32,
    }
    table = pa.Table.from_arrays([cols[f.name] for f in SPAN_SCHEMA], schema=SPAN_SCHEMA)
    # Spans reach a store roughly in time order.
    return table.take(pc.sort_indices(table, [("start_ns", "ascending")]))
