"""Large traces: the fast paths of reading, adjusting, assembling, analysing and viewing a trace
give exactly what the straightforward per-span code gives.

Each test compares with a reference written here the simple way (row by row, span by span) or
checks the structure of a 100,000-span result. None of them measures time: ``bench/ui.py`` and
``bench/query.py`` do.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import random
import threading
from typing import Any

import pyarrow as pa
import pytest

from spanlake.model import (
    PROMOTED_ATTRIBUTES,
    RESOURCE_SCHEMA,
    SCOPE_SCHEMA,
    SPAN_SCHEMA,
    Event,
    Link,
    Resource,
    Scope,
    Span,
    encode_string,
    spans_from_arrow,
)
from spanlake.query.adjusters.base import AdjusterInput
from spanlake.query.adjusters.clock_skew import ClockSkewAdjuster
from spanlake.query.adjusters.dedupe_spans import dedupe_spans
from spanlake.query.adjusters.library_attributes import move_library_attributes
from spanlake.query.adjusters.sort_collections import sort_collections
from spanlake.query.adjusters.span_id_uniquifier import deduplicate_client_server_span_ids
from spanlake.query.adjusters.span_links import remove_empty_span_links
from spanlake.query.adjusters.standard import adjust_trace
from spanlake.query.analysis.trace_stats import analyze_trace
from spanlake.query.api.spanlake_v1_trace_json import trace_view
from spanlake.query.api.spanlake_v1_traces_cache import LoadedTrace
from spanlake.query.assemble import assemble_trace
from spanlake.query.service import QueryService, TraceResult, gc_paused
from tests.storage_suite.builders import BASE_NS, MS, BatchBuilder, ResourceSpec, sid, tid

N = 100_000


# -- a big trace ----------------------------------------------------------------------------------


def big_trace(n: int = N, seed: int = 3) -> list[Span]:
    """``n`` spans over a dozen services on six hosts, in shuffled order: nested and parallel
    children, children that overrun their parent or start before it (clock skew), a few events
    out of time order, unsorted attribute maps, a missing parent and a duplicated span id."""
    rng = random.Random(seed)
    resources = [
        Resource({"service.name": encode_string(f"svc-{k}"), "host.name": encode_string(f"host-{k % 6}")})
        for k in range(12)
    ]
    scope = Scope("big", "1")
    tr = tid(0xB16)
    spans = [Span(tr, sid(1), b"", "root", 2, 0, 10**10, resource=resources[0], scope=scope)]
    for i in range(2, n + 1):
        p = spans[rng.randrange(max(0, i - 40), i - 1)] if rng.random() < 0.9 else spans[rng.randrange(0, i - 1)]
        start = p.start_ns + rng.randrange(-1000, max(p.duration_ns, 2))  # sometimes before the parent
        dur = max(1, int(p.duration_ns * rng.random() * (1.3 if rng.random() < 0.02 else 0.6)))
        events = []
        if rng.random() < 0.01:
            events = [Event(start + 5, "late"), Event(start + 1, "exception", {"b": "s1", "a": "s2"})]
        spans.append(Span(
            tr, sid(i), p.span_id, f"op-{rng.randrange(20)}", rng.choice([1, 2, 3, 4, 5]), start, dur,
            status_code=2 if rng.random() < 0.01 else 0,
            attributes={"z.key": encode_string("z"), "a.key": encode_string(str(i))},
            events=events, resource=resources[rng.randrange(12)], scope=scope,
        ))
    spans.append(Span(tr, sid(n + 1), sid(10**9), "orphan", 1, 5, 5, resource=resources[1], scope=scope))
    spans.append(dataclasses.replace(spans[7], name="same id, other span"))
    rng.shuffle(spans)
    return spans


@pytest.fixture(scope="module")
def big() -> list[Span]:
    return big_trace()


# -- assembly -------------------------------------------------------------------------------------


def test_100k_span_tree_structure(big):
    spans = big
    t = assemble_trace(spans)
    n = len(spans)
    first: dict[bytes, int] = {}
    for i, s in enumerate(spans):
        first.setdefault(s.span_id, i)
    expected_parent = [first.get(s.parent_span_id, -1) if s.parent_span_id else -1 for s in spans]
    assert t.parent == expected_parent
    assert t.index_by_id == first
    # Every span is in the waterfall once, after its parent, at its parent's depth plus one.
    assert sorted(t.order) == list(range(n))
    seen: set[int] = set()
    for i in t.order:
        p = t.parent[i]
        assert p < 0 or p in seen
        assert t.depth[i] == (0 if p < 0 else t.depth[p] + 1)
        seen.add(i)
    # Children (and roots) in start order, input order breaking ties.
    for i in range(0, n, 97):
        kids = t.children[i]
        assert kids == sorted(kids, key=lambda k: (spans[k].start_ns, k))
        assert all(t.parent[k] == i for k in kids)
    assert t.roots == sorted(t.roots, key=lambda k: (spans[k].start_ns, k))
    assert sum(len(k) for k in t.children) + len(t.roots) == n
    assert len(t.roots) == 2  # the root and the orphan
    assert t.warnings == [
        "1 span(s) share their span ID with another span",
        "1 span(s) have a parent that is not in the trace",
    ]
    assert (t.start_ns, t.end_ns) == (min(s.start_ns for s in spans), max(s.end_ns for s in spans))
    assert t.max_depth == max(t.depth) + 1


def test_zero_span_id_is_not_the_parent_of_zero_parent_ids(mk):
    zero = mk(1)
    zero.span_id = bytes(8)
    child = mk(2, start=5)
    child.parent_span_id = bytes(8)
    t = assemble_trace([zero, child])
    assert t.roots == [0, 1] and t.span_warnings == {}


def test_cycles_in_a_large_trace_are_broken_as_before(mk):
    spans = [mk(1, None, start=0, dur=100)] + [mk(i, i - 1, start=i) for i in range(2, 1000)]
    spans += [mk(5000, 5001, start=3), mk(5001, 5000, start=4), mk(5002, 5001, start=5)]
    t = assemble_trace(spans)
    assert sorted(t.order) == list(range(len(spans)))
    assert t.warnings == ["1 cycle(s) of parent span IDs were broken"]
    assert len(t.roots) == 2


# -- analysis -------------------------------------------------------------------------------------


def reference_self_times(spans: list[Span], children: list[list[int]]) -> list[int]:
    out = []
    for i, s in enumerate(spans):
        if s.end_ns <= s.start_ns:
            out.append(0)
            continue
        covered: set[tuple[int, int]] = set()
        ivs = sorted((max(spans[c].start_ns, s.start_ns), min(spans[c].end_ns, s.end_ns)) for c in children[i])
        total, run_s, run_e = 0, None, None
        for a, b in ivs:
            if b <= a:
                continue
            if run_e is None or a > run_e:
                if run_e is not None:
                    total += run_e - run_s
                run_s, run_e = a, b
            else:
                run_e = max(run_e, b)
        if run_e is not None:
            total += run_e - run_s
        del covered
        out.append(s.end_ns - s.start_ns - total)
    return out


def test_100k_span_analysis_matches_span_by_span_totals(big):
    t = assemble_trace(big)
    a = analyze_trace(t)
    assert a.self_ns == reference_self_times(big, t.children)
    assert a.span_count == len(big) and a.error_count == sum(s.status_code == 2 for s in big)
    assert a.span_services == [s.service_name for s in big]
    by_service: dict[str, list[int]] = {}
    by_operation: dict[tuple[str, str], list[int]] = {}
    for i, s in enumerate(big):
        for acc in (by_service.setdefault(s.service_name, [0] * 5),
                    by_operation.setdefault((s.service_name, s.name), [0] * 5)):
            acc[0] += 1
            acc[1] += max(s.duration_ns, 0)
            acc[2] += a.self_ns[i]
            acc[3] += a.critical_path.time_by_span.get(i, 0)
            acc[4] += s.status_code == 2
    assert {g.service: [g.count, g.total_ns, g.self_ns, g.critical_path_ns, g.errors] for g in a.by_service} == by_service
    assert {(g.service, g.operation): [g.count, g.total_ns, g.self_ns, g.critical_path_ns, g.errors]
            for g in a.by_operation} == by_operation
    assert all(type(g.errors) is int for g in a.by_service + a.by_operation)
    assert [g.self_ns for g in a.by_service] == sorted((g.self_ns for g in a.by_service), reverse=True)
    assert a.duration_ns == t.end_ns - t.start_ns
    # The critical path of each root runs back to back from the root's end.
    assert all(sec.start_ns < sec.end_ns for sec in a.critical_path.sections)


# -- adjusters ------------------------------------------------------------------------------------


def test_standard_adjusters_on_100k_spans_never_touch_their_input(big):
    spans = big

    def snapshot() -> list[tuple[Any, ...]]:
        return [(s.span_id, s.parent_span_id, s.start_ns, list(s.attributes.items()), id(s.attributes),
                 [(e.time_ns, list(e.attributes.items())) for e in s.events], id(s.resource),
                 list(s.resource.attributes.items())) for s in spans]

    before = snapshot()
    out = adjust_trace(spans, max_clock_skew_adjust_ns=10**12)
    assert snapshot() == before
    assert len(out.spans) == len(spans)
    for s in out.spans:
        assert list(s.attributes) == sorted(s.attributes)
        assert [e.time_ns for e in s.events] == sorted(e.time_ns for e in s.events)
        assert all(list(e.attributes) == sorted(e.attributes) for e in s.events)
    shifted = [w for w in out.span_warnings if any("adjusted by" in x for x in w)]
    assert shifted  # some children started before their parent
    assert any("duplicate span ID=0000000000000008; kept as a separate span" in w for w in
               assemble_trace(out.spans, out.span_warnings).span_warnings.values())


def test_warning_lists_of_the_input_stay_unchanged(mk):
    spans = [mk(1, None, start=0, dur=100, host="A"), mk(2, 1, start=500, dur=10, host="B")]
    spans[1].attributes["telemetry.sdk.name"] = encode_string("x")
    spans[1].resource.attributes["telemetry.sdk.name"] = encode_string("other")
    spans[1].links = [Link(b"", sid(3))]
    first = AdjusterInput(list(spans), [["seed 0"], ["seed 1"]], ["trace seed"])
    step = first
    for adjust in (deduplicate_client_server_span_ids, sort_collections, dedupe_spans, ClockSkewAdjuster(10**9),
                   move_library_attributes, remove_empty_span_links):
        step = adjust(step)
    assert first.span_warnings == [["seed 0"], ["seed 1"]] and first.warnings == ["trace seed"]
    assert step.span_warnings[0] == ["seed 0"]
    assert step.span_warnings[1] == [
        "seed 1",
        "This span's timestamps were adjusted by -455ns",
        "conflicting values between Span and Resource for attribute telemetry.sdk.name",
        "Invalid span link removed",
    ]


def test_server_span_sharing_a_client_id_in_a_large_trace(mk):
    spans = [mk(i, i - 1 if i > 1 else None, start=i, kind=2) for i in range(1, 2000)]
    spans.append(mk(1500, 1499, start=1500, kind=3))  # a client span reusing a server's id
    out = deduplicate_client_server_span_ids(AdjusterInput.of(spans))
    renamed = [s for s in out.spans if s.parent_span_id == sid(1500) and s.kind == 2]
    assert len(renamed) == 1 and renamed[0].span_id == sid(2000)  # the smallest id not in use
    assert out.spans[1500].parent_span_id == sid(2000)  # the old child now hangs under the server span


def test_dedupe_drops_identical_copies_only(mk):
    a = mk(1, None, attrs={"k": "sv"})
    spans = [a, copy.deepcopy(a), mk(2, 1), dataclasses.replace(copy.deepcopy(a), name="other")]
    out = dedupe_spans(AdjusterInput.of(spans))
    assert [s.name for s in out.spans] == ["op", "op", "other"]
    assert out.warnings == ["1 identical duplicate span(s) removed"]
    unique = AdjusterInput.of([mk(i) for i in range(1, 50)])
    assert dedupe_spans(unique) is unique


# -- reading rows ---------------------------------------------------------------------------------


def reference_spans_from_arrow(spans: pa.Table, resources: pa.Table, scopes: pa.Table) -> list[Span]:
    """Row by row, as the model built spans before it worked column by column."""
    def attrs_of(pairs: Any) -> dict[str, str]:
        return dict(pairs) if pairs else {}

    res = {r["resource_id"]: r for r in resources.to_pylist()}
    scs = {s["scope_id"]: s for s in scopes.to_pylist()}
    out = []
    for row in spans.to_pylist():
        attrs = attrs_of(row["attributes"])
        for col, key in PROMOTED_ATTRIBUTES.items():
            if row.get(col) is not None:
                attrs[key] = row[col]
        r = res.get(row["resource_id"])
        s = scs.get(row["scope_id"])
        out.append(Span(
            row["trace_id"], row["span_id"], row["parent_span_id"] or b"", row["name"] or "", row["kind"] or 0,
            row["start_ns"], row["duration_ns"], row["status_code"] or 0, row["status_message"] or "",
            row["trace_state"] or "", row["flags"] or 0, attrs, row["dropped_attributes_count"] or 0,
            [Event(e["time_ns"], e["name"] or "", attrs_of(e["attributes"]), e["dropped_attributes_count"] or 0)
             for e in row["events"] or []],
            row["dropped_events_count"] or 0,
            [Link(k["trace_id"], k["span_id"], k["trace_state"] or "", k["flags"] or 0, attrs_of(k["attributes"]),
                  k["dropped_attributes_count"] or 0) for k in row["links"] or []],
            row["dropped_links_count"] or 0,
            Resource(attrs_of(r["attributes"]), r["dropped_attributes_count"] or 0, r["schema_url"] or "")
            if r else Resource(),
            Scope(s["name"] or "", s["version"] or "", attrs_of(s["attributes"]), s["dropped_attributes_count"] or 0,
                  s["schema_url"] or "") if s else Scope(row["scope_name"] or "", row["scope_version"] or ""),
        ))
    return out


def odd_rows() -> tuple[pa.Table, pa.Table, pa.Table]:
    b = BatchBuilder()
    t = tid(0x0DD)
    rng = random.Random(5)
    for i in range(1, 3000):
        b.span(t, sid(i), sid(i // 2) if i > 1 else None, name=f"op{i % 7}", start_ns=BASE_NS + i * MS,
               attributes={"k": i, "http.route": "/r"} if i % 3 else ({"db.system": "pg"} if i % 5 else None),
               events=[{"time_ns": BASE_NS + i, "name": "e", "attributes": {"x": 1} if i % 2 else None}] * (i % 4 == 0),
               links=[{"trace_id": tid(9), "span_id": sid(i), "attributes": {"l": "v"}}] if i % 11 == 0 else None,
               resource=ResourceSpec(service=f"s{i % 3}"), status_code=rng.choice([0, 1, 2]))
    batch = b.build()
    spans = batch.spans
    # Nulls where the schema allows them: a null attribute map, null events and links, a null name.
    n = spans.num_rows
    mask = pa.array([i % 13 == 0 for i in range(n)])
    for col in ("attributes", "events", "links", "name", "status_message"):
        idx = spans.schema.get_field_index(col)
        spans = spans.set_column(idx, col, pa.compute.if_else(mask, pa.nulls(n, spans.schema.field(col).type),
                                                              spans.column(col)))
    # An unknown resource id for a few rows.
    idx = spans.schema.get_field_index("resource_id")
    ids = spans.column("resource_id").to_pylist()
    ids[17] = ids[400] = 123456789
    spans = spans.set_column(idx, "resource_id", pa.array(ids, pa.uint64()))
    return spans.cast(SPAN_SCHEMA), batch.resources.cast(RESOURCE_SCHEMA), batch.scopes.cast(SCOPE_SCHEMA)


def as_dicts(spans: list[Span]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(s) for s in spans]


def test_spans_from_arrow_matches_row_by_row():
    spans, resources, scopes = odd_rows()
    assert as_dicts(spans_from_arrow(spans, resources, scopes)) == as_dicts(
        reference_spans_from_arrow(spans, resources, scopes))
    # Slices and several chunks: offsets of nested columns do not start at zero.
    parts = pa.concat_tables([spans.slice(5, 700), spans.slice(1300, 9), spans.slice(0, 3), spans.slice(2000)])
    assert as_dicts(spans_from_arrow(parts, resources, scopes)) == as_dicts(
        reference_spans_from_arrow(parts, resources, scopes))
    assert spans_from_arrow(spans.slice(0, 0), resources, scopes) == []
    for n in (1, 12, 99, 100, 101):  # both sides of the row-by-row / column-wise switch
        part = spans.slice(2 * n, n)
        assert as_dicts(spans_from_arrow(part, resources, scopes)) == as_dicts(
            reference_spans_from_arrow(part, resources, scopes))


def test_spans_from_arrow_objects_are_independent():
    spans, resources, scopes = odd_rows()
    out = spans_from_arrow(spans, resources, scopes)
    no_attrs = [s for s in out if not s.attributes]
    assert len({id(s.attributes) for s in out}) == len(out)  # every span owns its map
    assert len({id(s.events) for s in out}) == len(out)
    assert no_attrs  # including the empty ones
    same_resource = [s for s in out if s.resource.attributes.get("service.name") == encode_string("s1")]
    assert len({id(s.resource) for s in same_resource}) == 1  # one resource object per id, as before


def test_ducklake_trace_of_unsorted_commits_comes_back_in_start_order(tmp_path):
    from spanlake.storage.api import GetTrace
    from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

    store = DuckLakeStore(DuckLakeOptions(data_dir=str(tmp_path), maintenance_interval_s=0))
    try:
        t = tid(0x50F7)
        rng = random.Random(11)
        starts = list(range(600))
        rng.shuffle(starts)
        for chunk in range(0, 600, 150):  # four commits, each in shuffled start order
            b = BatchBuilder()
            for k in starts[chunk:chunk + 150]:
                b.span(t, sid(k + 1), sid(1) if k else None, start_ns=BASE_NS + k * MS, service=f"s{k % 4}",
                       attributes={"k": k})
            b.span(tid(0x50F8), sid(1), None, start_ns=BASE_NS + chunk * MS)  # another trace in the same files
            store.write_spans(b.build()).result()
        got = store.get_trace(GetTrace(t))
        assert [s.start_ns for s in got] == [BASE_NS + k * MS for k in range(600)]
        assert [s.span_id for s in got] == [sid(k + 1) for k in range(600)]
        assert all(s.attributes == {"k": f"i{k}"} for k, s in enumerate(got))
        assert {s.trace_id for s in got} == {t}
        assert len(store.get_trace(GetTrace(tid(0x50F8)))) == 4
    finally:
        store.close()


# -- the trace view -------------------------------------------------------------------------------


def loaded(spans: list[Span]) -> LoadedTrace:
    adjusted = adjust_trace(spans)
    tree = assemble_trace(adjusted.spans, adjusted.span_warnings, adjusted.warnings)
    rows = tree.order
    row_of = [0] * len(rows)
    for r, i in enumerate(rows):
        row_of[i] = r
    result = TraceResult(spans[0].trace_id, adjusted.spans, adjusted.span_warnings, adjusted.warnings)
    return LoadedTrace(result, tree, analyze_trace(tree), rows, row_of)


def test_100k_span_view_columns(big):
    t = loaded(big)
    doc = trace_view(t)
    cols, ev = doc["spans"], doc["events"]
    n = len(big)
    assert all(len(v) == n for v in cols.values())
    t0 = t.analysis.start_ns
    names: list[str] = []
    events: list[tuple[int, int, str]] = []
    for r, i in enumerate(t.rows):
        s = t.spans[i]
        assert cols["spanId"][r] == s.span_id.hex()
        p = t.tree.parent[i]
        assert cols["parent"][r] == (t.row_of[p] if p >= 0 else -1)
        assert doc["services"][cols["service"][r]] == s.service_name
        assert doc["names"][cols["name"][r]] == s.name
        assert (cols["kind"][r], cols["status"][r]) == (s.kind, s.status_code)
        assert (cols["start"][r], cols["duration"][r]) == (s.start_ns - t0, s.duration_ns)
        assert cols["self"][r] == t.analysis.self_ns[i]
        assert cols["criticalPath"][r] == t.analysis.critical_path.time_by_span.get(i, 0)
        for name in [s.name, *(e.name for e in s.events)]:
            if name not in names:
                names.append(name)
        events += [(r, e.time_ns - t0, e.name) for e in s.events]
    # One name table, numbered in order of first use, span names and event names alike.
    assert doc["names"] == names
    assert list(zip(ev["span"], ev["time"], [doc["names"][k] for k in ev["name"]])) == events
    assert ev["error"] == [int(name == "exception") for _, _, name in events]
    assert doc["spanCount"] == n and doc["depth"] == t.tree.max_depth
    assert doc["spanWarnings"] == {str(t.row_of[i]): w for i, w in t.tree.span_warnings.items()}


# -- the collector pause --------------------------------------------------------------------------


def test_gc_pause_nests_across_threads_and_restores_the_state():
    assert gc.isenabled()
    inner_started, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inner_started.set()
            release.wait(5)

    with gc_paused():
        assert not gc.isenabled()
        th = threading.Thread(target=other)
        th.start()
        inner_started.wait(5)
    assert not gc.isenabled()  # the other thread's pause still holds
    release.set()
    th.join()
    assert gc.isenabled()

    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # disabled before: left disabled
    finally:
        gc.enable()


def test_query_service_reads_with_the_collector_paused(mk):
    seen: list[bool] = []

    class Store:
        def get_trace(self, query: Any) -> list[Span]:
            seen.append(gc.isenabled())
            return [mk(1)]

    result = QueryService(Store()).get_trace(tid(1))  # type: ignore[arg-type]
    assert result is not None and len(result.spans) == 1
    assert seen == [False] and gc.isenabled()



def test_trace_cache_lets_go_of_replaced_entries_only_on_release(mk):
    from spanlake.query.api.spanlake_v1_traces_cache import TraceCache

    def value(n: int) -> LoadedTrace:
        return loaded([mk(i + 1, None if i == 0 else 1, start=i) for i in range(n)])

    cache = TraceCache(max_spans=10)
    first = value(3)
    assert cache.get((b"a", False), lambda: first) is first
    second = value(3)
    assert cache.get((b"a", False), lambda: second, fresh=True) is second
    assert cache._released == [first]  # kept until the response is out
    third = value(9)  # evicts the least recently used entry to stay under 10 spans
    cache.get((b"b", False), lambda: third)
    assert cache._released == [first, second]
    cache.release()
    assert cache._released == [] and cache.get((b"b", False), lambda: value(1)) is third
