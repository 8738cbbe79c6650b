"""The storage suite: every backend of the registry runs the same cases.

Variants: memory, DuckLake on a SQLite catalog, DuckLake on a PostgreSQL catalog. Read-only
cases share one data set per variant (``dataset.py``, ``queries.yaml``); cases that change
data get fresh storage. ``capabilities.py`` lists what a backend opts out of. Write-path cases
(queue, close, processes, kill -9) are in ``test_writes.py``; DuckLake's own in ``test_ducklake.py``.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
import pytest
import yaml

from spanlake.model import PROMOTED_ATTRIBUTES, Span, spans_from_arrow
from spanlake.storage import registry
from spanlake.storage.api import (
    DependencyLink,
    GetTrace,
    Operation,
    ServiceSpanCount,
    Store,
    TraceQuery,
)

from .builders import BASE_NS, SEC, MS, BatchBuilder, ResourceSpec, ScopeSpec, enc, sid, simple_trace, tid
from .conftest import VARIANTS, Site, make_site
from .dataset import BIG_TRACE_SPANS, T, search_batches

HERE = Path(__file__).parent
QUERIES = yaml.safe_load((HERE / "queries.yaml").read_text())


def test_variants_cover_the_registry() -> None:
    assert set(VARIANTS.values()) == set(registry.BACKENDS)


def test_unknown_backend_lists_valid_names() -> None:
    with pytest.raises(ValueError) as err:
        registry.open_store("cassandra")
    for name in registry.BACKENDS:
        assert name in str(err.value)


# ---------------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------------

ALL_VALUE_TYPES: dict[str, Any] = {
    "t.string": "hello ünïcode",
    "t.bool": True,
    "t.int": -42,
    "t.bigint": 2**62,
    "t.double": 3.25,
    "t.bytes": b"\x00\xffbin",
    "t.array": [1, "two", 3.5, False, None],
    "t.kvlist": {"a": 1, "nested": {"b": [b"x"]}},
    "t.empty": None,
}


def roundtrip_batch() -> BatchBuilder:
    res = ResourceSpec(
        "rt-svc",
        {"host.name": "h1", "r.int": 5, "r.list": ["a"]},
        dropped=3,
        schema_url="https://opentelemetry.io/schemas/1.24.0",
    )
    scope = ScopeSpec("rt-scope", "9.9", {"s.attr": "x", "s.num": 1.5}, dropped=2, schema_url="https://scope/schema")
    b = BatchBuilder()
    b.span(
        tid("rt"), sid(1), None, name="root", kind=2, start_ns=BASE_NS, duration_ns=123_456_789,
        status_code=2, status_message="it broke", trace_state="vendor=a,other=b", flags=257,
        attributes={**ALL_VALUE_TYPES, **{key: f"v-{key}" for key in PROMOTED_ATTRIBUTES.values()}},
        dropped_attributes_count=4,
        events=[
            {"time_ns": BASE_NS + 5, "name": "first", "attributes": {"e.int": 1, "e.str": "x"}, "dropped_attributes_count": 1},
            {"time_ns": BASE_NS + 6, "name": "second"},
        ],
        dropped_events_count=7,
        links=[
            {"trace_id": tid("linked"), "span_id": sid(77), "trace_state": "k=v", "flags": 1,
             "attributes": {"l.bool": False}, "dropped_attributes_count": 2},
        ],
        dropped_links_count=8,
        resource=res,
        scope=scope,
    )
    b.span(tid("rt"), sid(2), sid(1), name="child", kind=5, start_ns=BASE_NS + 1000, duration_ns=-5,
           resource=ResourceSpec(None), scope=ScopeSpec("", ""))
    # Delimiters of DuckDB's text forms of structs, maps and blobs in ids, keys and values.
    tricky = "a, b: {c}='d' [e]\\ \"f\"\n"
    b.span(
        tid("rt"), b"}'{,:\x00\\\"", sid(1), name=tricky, trace_state=tricky, status_message=tricky,
        start_ns=BASE_NS + 2000, attributes={tricky: tricky, "k=v, x": [tricky, {tricky: b"}'"}]},
        events=[{"name": tricky, "attributes": {tricky: tricky}}],
        links=[{"trace_id": b"]\xdc\x95,'{}\":=\x00\\xyz.", "span_id": b"/+\xb6\x9d|}{'",
                "trace_state": tricky, "attributes": {tricky: tricky}}],
        resource=ResourceSpec("rt-svc", {tricky: tricky}), scope=ScopeSpec(tricky, tricky, {tricky: tricky}),
    )
    # Random binary ids in nested links: DuckLake's inlined (catalog) rows could not read these
    # back, which is why the store turns inlining off.
    rng = random.Random(7)
    for i in range(8):
        b.span(tid("rt"), rng.randbytes(8), sid(1), name=f"random-{i}", start_ns=BASE_NS + 3000 + i,
               links=[{"trace_id": rng.randbytes(16), "span_id": rng.randbytes(8), "attributes": {"k": "v"}} for _ in range(3)])
    return b


def _by_span_id(spans: list[Span]) -> dict[bytes, Span]:
    return {s.span_id: s for s in spans}


def assert_same_spans(actual: list[Span], expected: list[Span]) -> None:
    assert len(actual) == len(expected)
    got = _by_span_id(actual)
    for exp in expected:
        act = got[exp.span_id]
        for f in dataclasses.fields(Span):
            assert getattr(act, f.name) == getattr(exp, f.name), f"span {exp.name}: field {f.name}"


def test_roundtrip_every_field(site: Site) -> None:
    store = site.open()
    batch = roundtrip_batch().build()
    expected = spans_from_arrow(batch.spans, batch.resources, batch.scopes)
    store.write_spans(batch).result(timeout=30)
    assert_same_spans(store.get_trace(GetTrace(tid("rt"))), expected)

    root = _by_span_id(store.get_trace(GetTrace(tid("rt"))))[sid(1)]
    for key, value in ALL_VALUE_TYPES.items():
        assert root.attributes[key] == enc(value)
    for key in PROMOTED_ATTRIBUTES.values():
        assert root.attributes[key] == enc(f"v-{key}")
    assert root.resource.schema_url == "https://opentelemetry.io/schemas/1.24.0"
    assert root.scope.attributes == {"s.attr": enc("x"), "s.num": enc(1.5)}

    if site.supports("compaction"):
        store.compact()  # type: ignore[attr-defined]  # files merged and rewritten
        assert_same_spans(store.get_trace(GetTrace(tid("rt"))), expected)


def test_results_belong_to_the_caller(store: Store) -> None:
    store.write_spans(roundtrip_batch().build()).result(timeout=30)
    first = store.get_trace(GetTrace(tid("rt")))
    first[0].attributes.clear()
    first[0].name = "mutated"
    again = store.get_trace(GetTrace(tid("rt")))
    assert all(s.name != "mutated" for s in again)


# ---------------------------------------------------------------------------------------------
# Shared data set: lookups, search, summaries, operations, dependencies
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[*VARIANTS, "ducklake-sqlite+compacted"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The data set in each variant, and once more after compaction (small files merged, the
    trace index rewritten sorted, so that other file and row-group statistics come into play)."""
    variant, _, then = request.param.partition("+")
    site = make_site(request, variant, tmp_path_factory.mktemp(variant))
    store = site.open()
    for batch in search_batches():
        store.write_spans(batch).result(timeout=60)
    if then == "compacted":
        store.compact()  # type: ignore[attr-defined]
    yield store
    site.close_all()


def _query(spec: dict[str, Any]) -> TraceQuery:
    spec = dict(spec)
    kwargs: dict[str, Any] = {}
    for key in ("start_min", "start_max"):
        if f"{key}_ms" in spec:
            kwargs[f"{key}_ns"] = T + spec.pop(f"{key}_ms") * MS
    for key in ("duration_min", "duration_max"):
        if f"{key}_ms" in spec:
            kwargs[f"{key}_ns"] = spec.pop(f"{key}_ms") * MS
    kwargs["attributes"] = tuple((k, str(v)) for k, v in spec.pop("attributes", []))
    return TraceQuery(**spec, **kwargs)


@pytest.mark.parametrize("case", QUERIES, ids=[c["caption"] for c in QUERIES])
def test_search(loaded: Store, case: dict[str, Any]) -> None:
    query = _query(case["query"])
    found = loaded.find_trace_ids(query)
    got = [f.trace_id for f in found]
    for label in case.get("must_not", []):
        assert tid(label) not in got, f"{label} must not match"
    assert got == [tid(label) for label in case["expected"]]
    summaries = loaded.find_trace_summaries(query)
    assert [s.trace_id for s in summaries] == got
    assert [(s.start_ns, s.end_ns) for s in summaries] == [(f.start_ns, f.end_ns) for f in found]


def test_found_trace_spans_whole_trace(loaded: Store) -> None:
    (late, _early) = loaded.find_trace_ids(TraceQuery(attributes=(("marker", "m1"),)))[::-1]
    assert (late.start_ns, late.end_ns) == (T + SEC // 2, T + SEC // 2 + 20 * SEC)


def test_summary_of_a_trace_written_in_two_commits(loaded: Store) -> None:
    (summary,) = loaded.find_trace_summaries(TraceQuery(service_name="split-svc"))
    assert summary.trace_id == tid("split")
    assert (summary.root_service_name, summary.root_span_name) == ("split-svc", "split-root")
    assert (summary.start_ns, summary.end_ns) == (T + 20 * SEC, T + 26 * SEC)
    assert (summary.span_count, summary.error_span_count) == (2, 1)
    assert summary.services == (ServiceSpanCount("split-child-svc", 1, 1), ServiceSpanCount("split-svc", 1, 0))


def test_summary_without_root(loaded: Store) -> None:
    (summary,) = loaded.find_trace_summaries(TraceQuery(service_name="orphan-svc"))
    assert (summary.root_service_name, summary.root_span_name, summary.span_count) == ("", "", 1)


def test_summary_figures(loaded: Store) -> None:
    (a1,) = loaded.find_trace_summaries(TraceQuery(attributes=(("ev.key", "boom"),)))
    assert (a1.root_service_name, a1.root_span_name, a1.span_count, a1.error_span_count) == ("search-svc", "GET /a", 2, 1)
    assert a1.services == (ServiceSpanCount("search-svc", 2, 1),)


def test_trace_by_id(loaded: Store) -> None:
    spans = loaded.get_trace(GetTrace(tid("a1")))
    assert sorted(s.span_id for s in spans) == [sid(1), sid(2)]


def test_trace_by_id_with_a_covering_hint(loaded: Store) -> None:
    spans = loaded.get_trace(GetTrace(tid("a1"), T, T + 2 * SEC))
    assert sorted(s.span_id for s in spans) == [sid(1), sid(2)]


def test_trace_by_id_with_a_partial_hint_comes_back_whole(loaded: Store) -> None:
    spans = loaded.get_trace(GetTrace(tid("late"), T, T + SEC))
    assert sorted(s.span_id for s in spans) == [sid(1), sid(2)]


def test_trace_by_id_with_a_hint_that_misses(loaded: Store) -> None:
    # The contract lets a store ignore the hint; ours do, and the trace comes back whole.
    spans = loaded.get_trace(GetTrace(tid("a1"), T + 1000 * SEC, T + 2000 * SEC))
    assert sorted(s.span_id for s in spans) == [sid(1), sid(2)]


def test_unknown_ids(loaded: Store) -> None:
    assert loaded.get_trace(GetTrace(tid("nope"))) == []
    assert loaded.get_trace(GetTrace(tid("nope"), T, T + SEC)) == []
    assert loaded.get_traces([tid("nope"), tid("nope2")]) == {}


def test_get_traces_batched(loaded: Store) -> None:
    got = loaded.get_traces([tid("a1"), tid("nope"), tid("a2"), tid("dep")])
    assert set(got) == {tid("a1"), tid("a2"), tid("dep")}
    assert len(got[tid("a1")]) == 2 and len(got[tid("dep")]) == 5


def test_big_trace(loaded: Store) -> None:
    spans = loaded.get_trace(GetTrace(tid("big")))
    assert len(spans) == BIG_TRACE_SPANS
    assert {s.span_id for s in spans} == {sid(i) for i in range(1, BIG_TRACE_SPANS + 1)}
    assert _by_span_id(spans)[sid(500)].attributes == {"i": enc(500)}


def test_duplicate_span_ids_are_kept(loaded: Store) -> None:
    spans = loaded.get_trace(GetTrace(tid("dup")))
    assert sorted(s.name for s in spans) == ["x", "y", "z"]
    assert {s.span_id for s in spans} == {sid(1)}


def test_services(loaded: Store) -> None:
    services = loaded.get_services()
    assert services == sorted(services)
    for name in ("search-svc", "other-svc", "ops-svc", "dep-db", "split-child-svc", "big-svc"):
        assert name in services


def test_operations(loaded: Store) -> None:
    assert loaded.get_operations("ops-svc") == [Operation("a", 2), Operation("a", 3), Operation("b", 1)]
    assert loaded.get_operations("ops-svc", 3) == [Operation("a", 3)]
    assert loaded.get_operations("ops-svc", 5) == []
    assert loaded.get_operations("no-such-svc") == []


def test_dependencies(loaded: Store) -> None:
    links = [d for d in loaded.get_dependencies(T + 29 * SEC, T + 40 * SEC) if d.parent.startswith("dep-")]
    assert links == [DependencyLink("dep-cart", "dep-db", 1, 0), DependencyLink("dep-frontend", "dep-cart", 2, 1)]
    assert not [d for d in loaded.get_dependencies(T, T + 29 * SEC) if d.parent.startswith("dep-")]


# ---------------------------------------------------------------------------------------------
# Retention and archive
# ---------------------------------------------------------------------------------------------


def _parquet_start_times(root: Path) -> list[tuple[bytes, int]]:
    rows: list[tuple[bytes, int]] = []
    for path in root.rglob("*.parquet"):
        if "spans" in path.parts:
            t = pq.read_table(path, columns=["trace_id", "start_ns"])
            rows += zip(t.column("trace_id").to_pylist(), t.column("start_ns").to_pylist())
    return rows


def test_retention(site: Site) -> None:
    store = site.open(cleanup_grace_s=0)
    old, new = BASE_NS, BASE_NS + 100 * SEC
    cutoff = BASE_NS + 50 * SEC
    store.write_spans(simple_trace("old", old, 20, "ret-svc").build()).result(timeout=30)
    store.write_spans(simple_trace("keep", old, 20, "ret-svc").build()).result(timeout=30)
    store.write_spans(simple_trace("new", new, 20, "ret-svc").build()).result(timeout=30)
    straddle = simple_trace("straddle", old, 19, "ret-svc")
    straddle.span(tid("straddle"), sid(100), sid(1), name="late-child", start_ns=new, service="ret-late-svc")
    store.write_spans(straddle.build()).result(timeout=30)

    assert store.archive_trace(tid("keep")) is True
    assert store.archive_trace(tid("never-stored")) is False

    assert store.apply_retention(cutoff) == 20 + 19
    assert store.get_trace(GetTrace(tid("old"))) == []
    assert len(store.get_trace(GetTrace(tid("keep")))) == 20
    assert len(store.get_trace(GetTrace(tid("new")))) == 20
    assert [s.name for s in store.get_trace(GetTrace(tid("straddle")))] == ["late-child"]

    found = [f.trace_id for f in store.find_trace_ids(TraceQuery(service_name="ret-svc"))]
    assert found == [tid("new"), tid("keep")]
    (summary,) = store.find_trace_summaries(TraceQuery(service_name="ret-late-svc"))
    assert (summary.start_ns, summary.span_count, summary.root_service_name) == (new, 1, "")
    assert summary.services == (ServiceSpanCount("ret-late-svc", 1, 0),)

    if site.supports("files"):
        stored = _parquet_start_times(site.root)
        assert stored, "expected span data in Parquet files"
        expired = [t for t, start in stored if start < cutoff and t != tid("keep")]
        assert not expired, "expired spans are still in files on disk"
