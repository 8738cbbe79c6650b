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
