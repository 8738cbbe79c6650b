"""DuckLake search read from the span files (``trace_search.FileSearch``) and the row-group
value filters behind it (``value_index.py``), checked against the lake SQL and the memory store.

The file path must give exactly what the full SQL query over the lake gives, for every kind of
condition, over several commit files, after compaction and after retention deleted rows; the
value filters must never miss a row group that holds a value (no false negatives), and must
actually leave most row groups out for a rare value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from spanlake.storage.api import TraceQuery
from spanlake.storage.ducklake import search_sql, trace_search
from spanlake.storage.ducklake.value_index import Prunable
from spanlake.storage.memory import MemoryStore

from .builders import BASE_NS, MS, SEC, BatchBuilder, ResourceSpec, ScopeSpec, sid, tid
from .conftest import make_site

MIN = 60 * SEC
RES = [ResourceSpec(f"fs-svc{i}", {"deployment.environment": "prod" if i % 2 else "dev", "host.name": f"h{i}"}) for i in range(3)]
SCOPES = [ScopeSpec("fs-scope", "1.0", {"scope.team": "red"}), ScopeSpec("fs-other", "2.0")]


def _batches() -> list[Any]:
    """Six commits of 400 traces (3 spans each) over six hours, with every kind of attribute."""
    out = []
    for c in range(6):
        b = BatchBuilder()
        for i in range(400):
            n = c * 400 + i
            t = tid(f"fs{n}")
            start = BASE_NS + n * 9 * SEC
            res, scope = RES[n % 3], SCOPES[n % 2]
            b.span(t, sid(1), None, name=f"GET /r{n % 7}", kind=2, start_ns=start, duration_ns=(n % 50 + 1) * MS,
                   status_code=2 if n % 17 == 0 else 0, resource=res, scope=scope,
                   attributes={"user": f"u{n % 300}", "http.route": f"/r{n % 7}", "n": n % 11, "ok": n % 2 == 0,
                               "tags": ["a", f"x{n % 3}"], "batch": f"c{c}"})
            b.span(t, sid(2), sid(1), name="SELECT", kind=3, start_ns=start + MS, duration_ns=2 * MS, resource=res,
                   scope=scope, attributes={"db.system": "postgresql", "user": f"u{(n + 1) % 300}"},
                   events=[{"time_ns": start + MS, "name": "ev", "attributes": {"ev.key": f"e{n % 40}"}}] if n % 5 == 0 else [],
                   links=[{"trace_id": tid(f"fs{n - 1}"), "span_id": sid(1), "attributes": {"link.kind": f"l{n % 9}"}}]
                   if n % 7 == 0 else [])
            b.span(t, sid(3), sid(2), name="query", kind=2, start_ns=start + 2 * MS, duration_ns=MS, service="fs-db")
        out.append(b.build())
    return out


QUERIES: list[dict[str, Any]] = [
    {"attributes": (("user", "u7"),)},
    {"attributes": (("user", "u7"),), "limit": 3},
    {"attributes": (("user", "u299"), ("error", "true"))},
    {"attributes": (("http.route", "/r3"),), "service_name": "fs-svc0"},  # promoted column
    {"attributes": (("n", "4"), ("ok", "true"))},
    {"attributes": (("ev.key", "e3"),)},  # event attribute
    {"attributes": (("link.kind", "l2"),)},  # link attribute
    {"attributes": (("deployment.environment", "prod"),), "operation_name": "SELECT"},  # resource
    {"attributes": (("resource.host.name", "h2"),), "limit": 50},
    {"attributes": (("scope.team", "red"), ("user", "u8"))},  # scope
    {"attributes": (("tags", '["a","x1"]'),), "limit": 5},  # JSON-looking text: the UDF decides
    {"attributes": (("user", "nobody"),)},
    {"attributes": (("span.kind", "client"), ("user", "u10"))},
    {"service_name": "fs-svc1", "operation_name": "GET /r2", "duration_min_ns": 10 * MS, "duration_max_ns": 30 * MS},
    {"service_name": "fs-db", "span_kind": 2, "limit": 100},
    {"service_name": "fs-svc2", "start_min_ns": BASE_NS + 60 * MIN, "start_max_ns": BASE_NS + 200 * MIN},
    {"attributes": (("user", "u12"),), "start_min_ns": BASE_NS + 30 * MIN, "start_max_ns": BASE_NS + 300 * MIN, "limit": 4},
    {"operation_name": "query", "limit": 1000},
    {"attributes": (("batch", "c4"), ("user", "u5"))},
]


@pytest.fixture(scope="module", params=["ducklake-sqlite", "ducklake-postgres"])
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, MemoryStore]]:
    site = make_site(request, request.param, Path(tmp_path_factory.mktemp("file-search")))
    store, reference = site.open(), MemoryStore()
    for b in _batches():
        store.write_spans(b).result(timeout=60)
        reference.write_spans(b).result(timeout=60)
    yield store, reference
    site.close_all()


def _lake_answer(store: Any, q: TraceQuery) -> list[tuple[bytes, int, int]]:
    """The full SQL query over the lake, no shortcuts."""
    with store._reader._sessions.read() as (cur, _):  # noqa: SLF001
        return [tuple(r) for r in cur.execute(*search_sql.find_traces_sql(q)).fetchall()]


def _check_all(store: Any, reference: MemoryStore) -> None:
    reader = store._reader  # noqa: SLF001
    for kw in QUERIES:
        q = TraceQuery(**kw)
        found = reader._find_in_files(q)  # noqa: SLF001
        assert found is not None, kw  # the file path was taken
        want = _lake_answer(store, q)
        assert [tuple(r) for r in found[0]] == want, kw
        assert [(f.trace_id, f.start_ns, f.end_ns) for f in store.find_trace_ids(q)] == want, kw
        assert [(f.trace_id, f.start_ns, f.end_ns) for f in reference.find_trace_ids(q)] == want, kw


def test_file_search_matches_the_lake(stores: tuple[Any, MemoryStore]) -> None:
    _check_all(*stores)


def test_slices_with_many_row_groups_go_through_the_lake(
    stores: tuple[Any, MemoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every slice over the limit: candidates come from the lake, at the snapshot listed.
    monkeypatch.setattr(trace_search, "MAX_DIRECT_ROW_GROUPS", 0)
    _check_all(*stores)


def test_value_filters_have_no_false_negatives(stores: tuple[Any, MemoryStore]) -> None:
    store, _ = stores
    reader = store._reader  # noqa: SLF001
    cur = reader._sessions.cursor()  # noqa: SLF001
    files = reader._files  # noqa: SLF001
    for f in reader._files.cached(max(reader._files._lists))["spans"]:  # noqa: SLF001
        info = files.info(f.path, "spans")
        filters = reader._search.value_index.filters(cur, f.path, info)  # noqa: SLF001
        rows = cur.execute(
            "SELECT file_row_number, map_keys(attributes), map_values(attributes), resource_id FROM read_parquet(?, file_row_number = true)",
            [f.path],
        ).fetchall()
        for r, keys, values, rid in rows[::37]:
            g = int(np.searchsorted(info.offsets, r, side="right") - 1)
            for k, v in zip(keys, values):
                assert filters.may_hold_any(Prunable(k, (v,), (), ()).tokens(cur))[g], (f.path, r, k, v)
            assert filters.may_hold_any(Prunable("", (), (rid,), ()).tokens(cur))[g]


def test_rare_values_prune_row_groups(stores: tuple[Any, MemoryStore]) -> None:
    store, _ = stores
    reader = store._reader  # noqa: SLF001
    cur = reader._sessions.cursor()  # noqa: SLF001
    store.find_trace_ids(TraceQuery(attributes=(("user", "u1"),)))  # lists the files
    lists = reader._files.cached(max(reader._files._lists))  # noqa: SLF001
    infos = [(f, reader._files.info(f.path, "spans")) for f in lists["spans"]]  # noqa: SLF001
    total = sum(len(i.rows) for _, i in infos)
    cond = Prunable("batch", ("sc2",), (), ())  # in one commit's file only
    kept = reader._search.row_groups(cur, infos, [(cond, cond.tokens(cur))], None, BASE_NS + 10**15)  # noqa: SLF001
    n_kept = sum(len(g) for _, _, g in kept)
    assert 0 < n_kept < total


def test_after_compaction_and_retention(stores: tuple[Any, MemoryStore]) -> None:
    store, reference = stores
    store.compact()
    _check_all(store, reference)
    cutoff = BASE_NS + 100 * MIN
    store.apply_retention(cutoff)
    reference.apply_retention(cutoff)
    _check_all(store, reference)


def test_latest_per_trace_orders_like_the_sql() -> None:
    import pyarrow as pa

    rows = pa.table({"trace_id": [b"b", b"a", b"b", b"c"], "start_ns": [5, 7, 7, 1]})
    assert trace_search.latest_per_trace(rows, 2) == [(b"a", 7), (b"b", 7)]


def test_filters_built_row_group_by_row_group(tmp_path: Path) -> None:
    """Building the filters of some row groups, then others, misses nothing in any of them."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spanlake.model import ATTR_MAP
    from spanlake.storage.ducklake.lake_files import _read_info
    from spanlake.storage.ducklake.value_index import ValueIndex

    n = 10_000
    keys = pa.array(["user"] * n)
    values = pa.array([f"su{i}" for i in range(n)])
    maps = pa.MapArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32)), keys, values).cast(ATTR_MAP)
    path = str(tmp_path / "spans.parquet")
    pq.write_table(pa.table({"start_ns": pa.array(np.arange(n), pa.int64()), "attributes": maps,
                             "resource_id": pa.array([i % 3 for i in range(n)], pa.uint64())}),
                   path, row_group_size=1_500)
    info = _read_info(path, ("start_ns",))
    cur = duckdb.connect()
    index = ValueIndex()
    for groups in ([4], [0, 1], None):
        f = index.filters(cur, path, info, None if groups is None else np.array(groups))
        for g in (range(len(info.rows)) if groups is None else groups):
            assert f.built[g]
            for i in range(int(info.offsets[g]), int(info.offsets[g] + info.rows[g]), 97):
                assert f.may_hold_any(Prunable("user", (f"su{i}",), (), ()).tokens(cur))[g], (g, i)
            assert f.may_hold_any(Prunable("", (), (2,), ()).tokens(cur))[g]
    assert f.built.all()
    hits = f.may_hold_any(Prunable("user", ("su7777",), (), ()).tokens(cur))
    assert hits[7777 // 1_500] and hits.sum() <= 3  # the row group of the row, and few others
