"""Read-path cases where DuckLake takes shortcuts, checked against the memory store's answers.

The DuckLake reader looks traces up in the Parquet files directly, searches newest spans first
in growing time slices, joins dependencies within a time window first, and keeps per-file
operation sets; each case builds data where such a shortcut could go wrong (long traces,
parents far before the window, deleted rows, many matches) and compares every backend with a
:class:`~spanlake.storage.memory.MemoryStore` fed the same batches.
"""

from __future__ import annotations

from spanlake.model import SpanBatch
from spanlake.storage.api import GetTrace, Store, TraceQuery
from spanlake.storage.memory import MemoryStore

from .builders import BASE_NS, MS, SEC, BatchBuilder, sid, tid
from .conftest import Site

MIN = 60 * SEC
HOUR = 60 * MIN


def _both(site: Site, batches: list[SpanBatch], **options: object) -> tuple[Store, MemoryStore]:
    store, reference = site.open(**options), MemoryStore()
    for b in batches:
        store.write_spans(b).result(timeout=60)
        reference.write_spans(b).result(timeout=60)
    return store, reference


def _search_batches() -> list[SpanBatch]:
    """Traces with a matching span ("hit") at many times over 6 hours: short ones, and long
    ones whose matching span comes hours after their start, some in separate commits."""
    end = BASE_NS + 6 * HOUR
    batches = []
    b = BatchBuilder()
    for i in range(60):  # short traces, every 6 minutes, the newest close to ``end``
        t = end - i * 6 * MIN - SEC
        b.span(tid(f"s{i}"), sid(1), None, name="root", start_ns=t, service="rp-svc")
        b.span(tid(f"s{i}"), sid(2), sid(1), name="hit" if i % 3 else "miss", start_ns=t + MS, service="rp-svc",
               attributes={"user": f"u{i % 5}"})
    batches.append(b.build())
    for i in range(8):  # long traces: started hours ago, matching span recently
        b = BatchBuilder()
        b.span(tid(f"l{i}"), sid(1), None, name="root", start_ns=BASE_NS + i * 20 * MIN, duration_ns=6 * HOUR, service="rp-svc")
        batches.append(b.build())
        b = BatchBuilder()
        b.span(tid(f"l{i}"), sid(2), sid(1), name="hit", start_ns=end - i * 7 * MIN - 2 * SEC, service="rp-svc",
               attributes={"user": "u1"})
        batches.append(b.build())
    # Many long traces whose matching spans are all newer than those of the short traces that
    # started after them: the newest matching spans point at the wrong traces first.
    b = BatchBuilder()
    for i in range(30):
        b.span(tid(f"w{i}"), sid(1), None, name="root", start_ns=BASE_NS + i * SEC, duration_ns=6 * HOUR, service="rp-long")
        b.span(tid(f"w{i}"), sid(2), sid(1), name="hit", start_ns=end - i * 10 * SEC, service="rp-long")
    for i in range(10):
        b.span(tid(f"n{i}"), sid(1), None, name="hit", start_ns=end - HOUR - i * MIN, service="rp-long")
    batches.append(b.build())
    return batches


QUERIES = [
    TraceQuery(service_name="rp-svc", operation_name="hit", limit=5),
    TraceQuery(service_name="rp-svc", operation_name="hit", limit=20),
    TraceQuery(service_name="rp-svc", operation_name="hit", limit=200),
    TraceQuery(service_name="rp-svc", operation_name="hit", limit=0),
    TraceQuery(service_name="rp-svc", operation_name="root", limit=3),
    TraceQuery(attributes=(("user", "u1"),), limit=4),
    TraceQuery(attributes=(("user", "u1"),), limit=10),
    TraceQuery(attributes=(("user", "u4"),), limit=10),
    TraceQuery(service_name="rp-svc", start_min_ns=BASE_NS + 5 * HOUR, start_max_ns=BASE_NS + 5 * HOUR + 30 * MIN, limit=7),
    TraceQuery(service_name="rp-svc", start_max_ns=BASE_NS + 2 * HOUR, limit=3),
    TraceQuery(service_name="rp-svc", start_min_ns=BASE_NS + 7 * HOUR, limit=3),
    TraceQuery(service_name="no-such-svc", limit=20),
    TraceQuery(service_name="rp-long", operation_name="hit", limit=3),
    TraceQuery(service_name="rp-long", operation_name="hit", limit=12),
    TraceQuery(service_name="rp-long", operation_name="hit", start_min_ns=BASE_NS + 5 * HOUR, limit=2),
]


def test_search_matches_the_reference(site: Site) -> None:
    store, reference = _both(site, _search_batches())
    for q in QUERIES:
        assert store.find_trace_ids(q) == reference.find_trace_ids(q), q
        assert store.find_trace_summaries(q) == reference.find_trace_summaries(q), q
    if site.supports("compaction"):
        store.compact()  # type: ignore[attr-defined]
        for q in QUERIES:
            assert store.find_trace_ids(q) == reference.find_trace_ids(q), q


def test_dependencies_with_parents_long_before_the_window(site: Site) -> None:
    window = BASE_NS + 3 * HOUR
    b = BatchBuilder()
    # Parent two hours before the window, its child inside: still an edge.
    b.span(tid("far"), sid(1), None, name="p", start_ns=window - 2 * HOUR, duration_ns=3 * HOUR, service="dep-a")
    b.span(tid("far"), sid(2), sid(1), name="c", start_ns=window + MIN, service="dep-b", status_code=2)
    # Parent just before the window and one inside it.
    b.span(tid("near"), sid(1), None, name="p", start_ns=window - MIN, service="dep-a")
    b.span(tid("near"), sid(2), sid(1), name="c", start_ns=window + MIN, service="dep-b")
    b.span(tid("near"), sid(3), sid(2), name="c2", start_ns=window + 2 * MIN, service="dep-c")
    # A child whose parent never arrived, and a duplicate parent span id.
    b.span(tid("orphan"), sid(2), sid(9), name="c", start_ns=window + MIN, service="dep-b")
    b.span(tid("dup"), sid(1), None, name="p", start_ns=window, service="dep-a")
    b.span(tid("dup"), sid(1), None, name="p", start_ns=window, service="dep-c")
    b.span(tid("dup"), sid(2), sid(1), name="c", start_ns=window + MS, service="dep-b")
    # A child before the window does not count.
    b.span(tid("early"), sid(1), None, name="p", start_ns=window - 3 * HOUR, service="dep-a")
    b.span(tid("early"), sid(2), sid(1), name="c", start_ns=window - 3 * HOUR + MS, service="dep-c")
    store, reference = _both(site, [b.build()])
    for lo, hi in ((window, window + HOUR), (window - 4 * HOUR, window + HOUR), (window + 90 * SEC, window + HOUR)):
        assert store.get_dependencies(lo, hi) == reference.get_dependencies(lo, hi)


def test_lookups_and_operations_after_retention_and_compaction(site: Site) -> None:
    batches = []
    for i in range(6):
        b = BatchBuilder()
        for j in range(40):
            t = BASE_NS + i * 10 * MIN + j * SEC
            b.span(tid(f"r{i}-{j}"), sid(1), None, name=f"op{i % 3}", kind=2, start_ns=t, service=f"ret{i % 2}")
            b.span(tid(f"r{i}-{j}"), sid(2), sid(1), name=f"child{i}", kind=3, start_ns=t + MS, service="ret-late")
        batches.append(b.build())
    store, reference = _both(site, batches, cleanup_grace_s=0)
    cutoff = BASE_NS + 25 * MIN
    assert store.apply_retention(cutoff) == reference.apply_retention(cutoff)
    ids = [tid(f"r{i}-{j}") for i in range(6) for j in (0, 17, 39)]
    for step in ("retention", "compaction"):
        got, want = store.get_traces(ids), reference.get_traces(ids)
        assert {t: [(s.span_id, s.name) for s in v] for t, v in got.items()} == {
            t: [(s.span_id, s.name) for s in v] for t, v in want.items()
        }, step
        assert store.get_services() == reference.get_services(), step
        for service in ("ret0", "ret1", "ret-late"):
            assert store.get_operations(service) == reference.get_operations(service), step
        assert store.get_trace(GetTrace(tid("r0-0"))) == []
        if not site.supports("compaction"):
            break
        store.compact()  # type: ignore[attr-defined]


def test_bulk_loaded_spans_read_like_written_ones(site: Site) -> None:
    if site.backend != "ducklake":
        return  # bulk loading is DuckLake's (storage/ducklake/bulk_load.py)
    from spanlake.storage.ducklake.bulk_load import bulk_load

    batches = _search_batches()
    store, reference = site.open(), MemoryStore()
    assert bulk_load(store, batches[:3], row_group_rows=64) == sum(b.num_spans for b in batches[:3])  # type: ignore[arg-type]
    for b in batches:
        reference.write_spans(b).result(timeout=60)
    for b in batches[3:]:
        store.write_spans(b).result(timeout=60)
    for q in QUERIES:
        assert store.find_trace_ids(q) == reference.find_trace_ids(q), q
    ids = [tid(f"s{i}") for i in range(0, 60, 7)] + [tid("l3"), tid("w5")]
    got, want = store.get_traces(ids), reference.get_traces(ids)
    assert {t: sorted(s.span_id for s in v) for t, v in got.items()} == {t: sorted(s.span_id for s in v) for t, v in want.items()}
    assert store.get_services() == reference.get_services()
