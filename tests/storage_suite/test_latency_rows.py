"""``span_latency_rows``: the spans behind latency percentiles and histograms, on every backend.

One data set of its own (service ``lat-svc`` and a neighbour ``lat-other``), written in two
commits; DuckLake runs it again after compaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pytest

from spanlake.storage.api import Store

from .builders import BASE_NS, MS, SEC, BatchBuilder, ResourceSpec, ScopeSpec, sid, tid
from .conftest import VARIANTS, make_site

T = BASE_NS + 3600 * SEC
RES = ResourceSpec("lat-svc", {"deployment.environment": "prod"})
SCOPE = ScopeSpec("lat-scope", "1.0", {"scope.team": "checkout"})

COLUMNS = pa.schema(
    [("start_ns", pa.int64()), ("duration_ns", pa.int64()), ("is_error", pa.bool_()), ("trace_id", pa.binary())]
)


def _batches() -> list[BatchBuilder]:
    first, second = BatchBuilder(), BatchBuilder()
    # GET /pay: server spans, one second apart, durations 10..50 ms; the third is an error.
    for i in range(5):
        (first if i < 3 else second).span(
            tid(f"lat{i}"), sid(1), None, name="GET /pay", kind=2, start_ns=T + i * SEC, duration_ns=(i + 1) * 10 * MS,
            status_code=2 if i == 2 else 1, resource=RES, scope=SCOPE,
            attributes={"http.route": "/pay", "customer": "acme" if i % 2 == 0 else "globex"},
        )
        # A client child of each, another operation of the same service.
        (first if i < 3 else second).span(
            tid(f"lat{i}"), sid(2), sid(1), name="SELECT pay", kind=3, start_ns=T + i * SEC + MS, duration_ns=2 * MS,
            resource=RES, scope=SCOPE, events=[{"time_ns": T + i * SEC + MS, "name": "ev", "attributes": {"db.rows": 3}}],
        )
    # The same operation name in another service, and one span before the window.
    second.span(tid("lat-other"), sid(1), None, name="GET /pay", kind=2, start_ns=T + SEC, service="lat-other")
    second.span(tid("lat-early"), sid(1), None, name="GET /pay", kind=2, start_ns=T - 10 * SEC, resource=RES, scope=SCOPE)
    # Entry spans of ent-svc: a root; a span called from ent-other; an orphan (its parent was
    # never stored). Not entries: a child of its own service, also when that parent started
    # before the window.
    a = T + 10 * SEC
    second.span(tid("entA"), sid(1), None, name="GET /entry", kind=2, start_ns=a, duration_ns=40 * MS, service="ent-svc")
    second.span(tid("entA"), sid(2), sid(1), name="work", start_ns=a + MS, duration_ns=30 * MS, service="ent-svc")
    second.span(tid("entA"), sid(3), sid(2), name="call", kind=3, start_ns=a + 2 * MS, duration_ns=25 * MS,
                service="ent-other")
    second.span(tid("entA"), sid(4), sid(3), name="GET /entry", kind=2, start_ns=a + 3 * MS, duration_ns=20 * MS,
                service="ent-svc")
    second.span(tid("entA"), sid(5), sid(9), name="GET /entry", kind=2, start_ns=a + 4 * MS, duration_ns=30 * MS,
                service="ent-svc")
    second.span(tid("entB"), sid(1), None, name="GET /entry", kind=2, start_ns=T - 5 * SEC, duration_ns=30 * SEC,
                service="ent-svc")
    second.span(tid("entB"), sid(2), sid(1), name="GET /entry", kind=2, start_ns=a + SEC, duration_ns=10 * MS,
                service="ent-svc")
    return [first, second]


@pytest.fixture(scope="module", params=[*VARIANTS, "ducklake-sqlite+compacted"])
def lat_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    variant, _, then = request.param.partition("+")
    site = make_site(request, variant, Path(tmp_path_factory.mktemp(variant)))
    store = site.open()
    for b in _batches():
        store.write_spans(b.build()).result(timeout=60)
    if then == "compacted":
        store.compact()  # type: ignore[attr-defined]
    yield store
    site.close_all()


def rows(store: Store, **kw: object) -> pa.Table:
    args = {"service": "lat-svc", "operation": "GET /pay", "span_kind": None, "attributes": (),
            "start_ns": T, "end_ns": T + 60 * SEC}
    args.update(kw)
    return store.span_latency_rows(**args)  # type: ignore[arg-type]


def test_columns_and_rows_in_start_order(lat_store: Store) -> None:
    t = rows(lat_store)
    assert t.schema.names == COLUMNS.names
    assert [f.type for f in t.schema] == [f.type for f in COLUMNS]
    assert t.column("start_ns").to_pylist() == [T + i * SEC for i in range(5)]
    assert t.column("duration_ns").to_pylist() == [(i + 1) * 10 * MS for i in range(5)]
    assert t.column("is_error").to_pylist() == [False, False, True, False, False]
    assert t.column("trace_id").to_pylist() == [tid(f"lat{i}") for i in range(5)]


def test_window_is_start_inclusive_end_exclusive(lat_store: Store) -> None:
    t = rows(lat_store, start_ns=T + SEC, end_ns=T + 3 * SEC)
    assert t.column("trace_id").to_pylist() == [tid("lat1"), tid("lat2")]
    assert rows(lat_store, start_ns=T - 20 * SEC, end_ns=T).column("trace_id").to_pylist() == [tid("lat-early")]


def test_operation_kind_and_service(lat_store: Store) -> None:
    assert rows(lat_store, operation=None).num_rows == 10
    assert rows(lat_store, operation=None, span_kind=3).column("duration_ns").to_pylist() == [2 * MS] * 5
    assert rows(lat_store, span_kind=3).num_rows == 0
    other = rows(lat_store, service="lat-other")
    assert other.column("trace_id").to_pylist() == [tid("lat-other")]
    assert rows(lat_store, service="no-such-service").num_rows == 0


def test_attribute_conditions(lat_store: Store) -> None:
    acme = rows(lat_store, attributes=(("customer", "acme"),))
    assert acme.column("trace_id").to_pylist() == [tid("lat0"), tid("lat2"), tid("lat4")]
    assert rows(lat_store, attributes=(("customer", "acme"), ("error", "true"))).num_rows == 1
    assert rows(lat_store, attributes=(("http.route", "/pay"),)).num_rows == 5  # promoted column
    assert rows(lat_store, attributes=(("deployment.environment", "prod"),)).num_rows == 5  # resource
    assert rows(lat_store, attributes=(("scope.team", "checkout"),)).num_rows == 5  # scope
    assert rows(lat_store, operation=None, attributes=(("db.rows", "3"),)).num_rows == 5  # event
    assert rows(lat_store, attributes=(("customer", "initech"),)).num_rows == 0


def test_limit_keeps_the_latest(lat_store: Store) -> None:
    t = rows(lat_store, limit=2)
    assert t.column("start_ns").to_pylist() == [T + 3 * SEC, T + 4 * SEC]
    assert rows(lat_store, limit=0).num_rows == 0


def test_entry_only_keeps_spans_whose_parent_is_not_in_their_service(lat_store: Store) -> None:
    every = rows(lat_store, service="ent-svc", operation="GET /entry")
    assert every.column("duration_ns").to_pylist() == [40 * MS, 20 * MS, 30 * MS, 10 * MS]
    entry = rows(lat_store, service="ent-svc", operation="GET /entry", entry_only=True)
    # The root, the span called from ent-other and the orphan; not entB's child, whose
    # parent (same service) started before the window.
    assert entry.column("duration_ns").to_pylist() == [40 * MS, 20 * MS, 30 * MS]
    assert entry.column("trace_id").to_pylist() == [tid("entA")] * 3
    assert rows(lat_store, service="ent-svc", operation=None, entry_only=True).num_rows == 3
    called = rows(lat_store, service=None, operation="call", entry_only=True)
    assert called.column("duration_ns").to_pylist() == [25 * MS]
    assert rows(lat_store, service="lat-svc", operation=None, entry_only=True).num_rows == 5  # its roots
