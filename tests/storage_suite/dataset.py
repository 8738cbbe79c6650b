"""The shared read-only data set of the search, summary and lookup cases.

Traces are labelled (``tid("a1")``); ``queries.yaml`` refers to them by label. Every group of
cases has its own service names, so groups do not see each other's traces.
"""

from __future__ import annotations

from spanlake.model import SpanBatch

from .builders import BASE_NS, MS, SEC, BatchBuilder, ResourceSpec, ScopeSpec, sid, tid

T = BASE_NS
BIG_TRACE_SPANS = 10_000

PROD = ResourceSpec("search-svc", {"deployment.environment": "prod"}, schema_url="https://opentelemetry.io/schemas/1.26.0")
STAGING = ResourceSpec("search-svc", {"deployment.environment": "staging"})
SCOPE_X = ScopeSpec("scope-x", "2.0", {"scope.attr": "sv"})


def search_batches() -> list[SpanBatch]:
    """Batches to write in order (several, so that some traces span several commits)."""
    b = BatchBuilder()
    # -- search: one span each unless noted --------------------------------------------------
    b.span(
        tid("a1"), sid(1), None, name="GET /a", kind=2, start_ns=T + 1 * SEC, duration_ns=100 * MS,
        resource=PROD, scope=SCOPE_X,
        attributes={"http.route": "/a", "customer": "acme", "count": 7, "ratio": 0.5, "flag": True},
        events=[{"time_ns": T + 1 * SEC + MS, "name": "ex", "attributes": {"ev.key": "boom"}}],
        links=[{"trace_id": tid("zz"), "span_id": sid(9), "attributes": {"link.key": "lv"}}],
    )
    b.span(
        tid("a1"), sid(2), sid(1), name="SELECT", kind=3, start_ns=T + 1 * SEC + 10 * MS, duration_ns=5 * MS,
        status_code=2, resource=PROD, attributes={"db.system": "postgresql", "customer": "other"},
    )
    b.span(tid("a2"), sid(1), None, name="GET /b", kind=2, start_ns=T + 2 * SEC, duration_ns=2 * SEC,
           resource=STAGING, attributes={"customer": "globex"})
    b.span(tid("a3"), sid(1), None, name="GET /a", kind=2, start_ns=T + 3 * SEC, duration_ns=50 * MS,
           status_code=1, resource=PROD, attributes={"customer": "acme", "tags": ["x", "y"]})
    b.span(tid("other"), sid(1), None, name="GET /a", kind=2, start_ns=T + 4 * SEC, duration_ns=20 * MS,
           service="other-svc", attributes={"customer": "acme"})
    # -- ordering by trace start: "late" matches on a late child but started first -----------
    b.span(tid("late"), sid(1), None, name="root", start_ns=T + SEC // 2, duration_ns=20 * SEC, service="order-svc")
    b.span(tid("late"), sid(2), sid(1), name="child", start_ns=T + 10 * SEC, service="order-svc",
           attributes={"marker": "m1"})
    b.span(tid("early"), sid(1), None, name="root", start_ns=T + 5 * SEC, service="order-svc",
           attributes={"marker": "m1"})
    # -- summaries ---------------------------------------------------------------------------
    b.span(tid("split"), sid(1), None, name="split-root", start_ns=T + 20 * SEC, duration_ns=3 * SEC, service="split-svc")
    b.span(tid("orphan"), sid(1), sid(99), name="lost", start_ns=T + 22 * SEC, service="orphan-svc")
    # -- operations ----------------------------------------------------------------------------
    for i, (name, kind) in enumerate([("a", 2), ("a", 3), ("b", 1), ("a", 2)]):
        b.span(tid("ops"), sid(i + 1), None, name=name, kind=kind, start_ns=T + 25 * SEC, service="ops-svc")
    # -- dependencies --------------------------------------------------------------------------
    dep = [
        (1, None, "dep-frontend", 0),
        (2, 1, "dep-cart", 2),
        (3, 2, "dep-db", 0),
        (4, 3, "dep-db", 0),
        (5, 1, "dep-cart", 0),
    ]
    for span, parent, service, status in dep:
        b.span(tid("dep"), sid(span), sid(parent) if parent else None, name=f"dep-op-{span}",
               start_ns=T + 30 * SEC + span * MS, status_code=status, service=service)
    # -- duplicates ------------------------------------------------------------------------------
    b.span(tid("dup"), sid(1), None, name="x", start_ns=T + 40 * SEC, service="dup-svc")
    b.span(tid("dup"), sid(1), None, name="y", start_ns=T + 40 * SEC + MS, service="dup-svc")
    first = b.build()

    b = BatchBuilder()
    b.span(tid("split"), sid(2), sid(1), name="split-child", start_ns=T + 21 * SEC, duration_ns=5 * SEC,
           status_code=2, service="split-child-svc")
    b.span(tid("dup"), sid(1), None, name="z", start_ns=T + 40 * SEC + 2 * MS, service="dup-svc")
    second = b.build()

    b = BatchBuilder()
    b.span(tid("big"), sid(1), None, name="big-root", start_ns=T + 50 * SEC, duration_ns=20 * SEC, service="big-svc")
    for i in range(2, BIG_TRACE_SPANS + 1):
        b.span(tid("big"), sid(i), sid(1 + (i - 2) // 10), name=f"big-{i % 7}", start_ns=T + 50 * SEC + i * 1000,
               duration_ns=MS, service="big-svc", attributes={"i": i})
    big = b.build()
    return [first, second, big]
