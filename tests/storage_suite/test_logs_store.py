"""The storage suite for logs: every backend runs the same cases.

Read-only cases share one data set per variant (:func:`log_batches`), and each search case is a
row of :data:`SEARCHES`: a caption, a query, and the labels of the records it must return, in
order (an empty list is a must-not-match case). Cases that change data get fresh storage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
import pytest

from spanlake.log_model import LogBatch
from spanlake.model import decode_value
from spanlake.storage.api import InvalidLogQuery, LogBucket, LogQuery, LogStore, WriteQueueFull
from spanlake.storage.ducklake.store import DuckLakeStore

from .builders import BASE_NS, SEC, ResourceSpec, ScopeSpec, sid, simple_trace, tid
from .conftest import VARIANTS, Site, make_site
from .log_builders import LogBatchBuilder

T = BASE_NS
TRACE_X, TRACE_Y = tid("log-x"), tid("log-y")
RES_A = ResourceSpec(service="log-a", attributes={"host.name": "h1", "region": "eu"})
RES_B = ResourceSpec(service="log-b", attributes={"host.name": "h2"})
SCOPE_A = ScopeSpec(name="app.a", version="1", attributes={"lib.tier": "core"})
SCOPE_B = ScopeSpec(name="app.b", version="2")


def log_batches() -> list[LogBatch]:
    a, b, paged, spread = LogBatchBuilder(), LogBatchBuilder(), LogBatchBuilder(), LogBatchBuilder()

    def rec(builder: LogBatchBuilder, label: str, body, **kw) -> None:
        kw.setdefault("attributes", {})["label"] = label
        builder.log(body, **kw)

    ra = {"resource": RES_A, "scope": SCOPE_A}
    rb = {"resource": RES_B, "scope": SCOPE_B}
    rec(b, "b1", "cache miss for key user_42", time_ns=T + 1 * SEC, severity_number=5, **rb,
        attributes={"tags": ["x", "y"]})
    rec(a, "a1", "User alice logged in", time_ns=T + 1 * SEC, severity_number=9, trace_id=TRACE_X,
        span_id=sid(1), **ra, attributes={"user": "alice", "count": 3})
    rec(a, "a2", "Disk 91% full on /var", time_ns=T + 2 * SEC, severity_number=13, trace_id=TRACE_X,
        span_id=sid(2), **ra, attributes={"ratio": 0.91})
    rec(a, "a3", "Payment FAILED: card_declined", time_ns=T + 3 * SEC, severity_number=17, trace_id=TRACE_Y,
        span_id=sid(3), **ra)
    rec(a, "a4", {"order": 42, "state": "lost"}, time_ns=T + 4 * SEC, severity_number=21, trace_id=TRACE_Y,
        event_name="order.lost", **ra)
    rec(a, "a5", None, time_ns=T + 5 * SEC, severity_number=0, **ra)
    rec(b, "b2", 404, time_ns=T + 6 * SEC, severity_number=10, **rb, attributes={"http.status_code": 404})
    rec(b, "b3", "ünïcode ÜBER fail", time_ns=T + 7 * SEC, severity_number=18, **rb, attributes={"user": "bob"})
    for i in range(25):  # groups of five records in the same nanosecond: the tiebreak decides
        rec(paged, f"p{i}", f"page record {i}", time_ns=T + (10 + i // 5) * SEC, service="log-page")
    for k in range(30):  # an hour back, unevenly: searches read it in several time windows
        rec(spread, f"s{k}", f"spread record {k}", time_ns=T - k * k * 4 * SEC, service="log-spread")
    return [a.build(), b.build(), paged.build(), spread.build()]


def _labels(records) -> list[str]:
    return [decode_value(r.attributes["label"]) for r in records]


@pytest.fixture(scope="module", params=[*VARIANTS, "ducklake-sqlite+compacted"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogStore]:
    variant, _, then = request.param.partition("+")
    site = make_site(request, variant, tmp_path_factory.mktemp("logs-" + variant))
    store = site.open()
    for batch in log_batches():
        store.write_logs(batch).result(timeout=60)  # type: ignore[attr-defined]
    if then == "compacted":
        store.compact()  # type: ignore[attr-defined]
    yield store  # type: ignore[misc]
    site.close_all()


AB = ("log-a", "log-b")
SEARCHES: list[tuple[str, LogQuery, list[str]]] = [
    ("service, newest first", LogQuery(service_name="log-a"), ["a5", "a4", "a3", "a2", "a1"]),
    ("time range is [start, end)", LogQuery(start_ns=T + 2 * SEC, end_ns=T + 5 * SEC), ["a4", "a3", "a2"]),
    ("same nanosecond: later log_id first", LogQuery(start_ns=T + 1, end_ns=T + 2 * SEC), ["a1", "b1"]),
    ("min severity WARN", LogQuery(min_severity=13), ["b3", "a4", "a3", "a2"]),
    ("min severity ERROR", LogQuery(min_severity=17), ["b3", "a4", "a3"]),
    ("min severity 0 keeps unspecified", LogQuery(service_name="log-a", min_severity=0), ["a5", "a4", "a3", "a2", "a1"]),
    ("contains, case-insensitive", LogQuery(body_contains="USER"), ["a1", "b1"]),
    ("contains FAIL", LogQuery(body_contains="fail"), ["b3", "a3"]),
    ("contains a literal %", LogQuery(body_contains="91%"), ["a2"]),
    ("contains a literal _", LogQuery(body_contains="r_4"), ["b1"]),
    ("wildcards are literal", LogQuery(body_contains="9_%"), []),
    ("contains, unicode case folding", LogQuery(body_contains="über"), ["b3"]),
    ("contains in a map body's JSON", LogQuery(body_contains='"state":"lost"'), ["a4"]),
    ("regex", LogQuery(body_regex="^Payment .*declined$"), ["a3"]),
    ("regex with flags", LogQuery(body_regex=r"(?i)disk \d+%"), ["a2"]),
    ("regex on an int body", LogQuery(body_regex=r"^4\d\d$"), ["b2"]),
    ("regex is case-sensitive", LogQuery(body_regex="payment"), []),
    ("attribute string", LogQuery(attributes=(("user", "alice"),)), ["a1"]),
    ("attribute int by string form", LogQuery(attributes=(("count", "3"),)), ["a1"]),
    ("attribute double", LogQuery(attributes=(("ratio", "0.91"),)), ["a2"]),
    ("attribute array as JSON", LogQuery(attributes=(("tags", '["x","y"]'),)), ["b1"]),
    ("attribute int named like http", LogQuery(attributes=(("http.status_code", "404"),)), ["b2"]),
    ("plain key matches the resource", LogQuery(attributes=(("host.name", "h2"),)), ["b3", "b2", "b1"]),
    ("plain key matches the scope", LogQuery(attributes=(("lib.tier", "core"),), min_severity=17), ["a4", "a3"]),
    ("resource.<key>", LogQuery(attributes=(("resource.region", "eu"),), min_severity=21), ["a4"]),
    ("resource.<key> ignores record attributes", LogQuery(attributes=(("resource.user", "alice"),)), []),
    ("scope.name", LogQuery(attributes=(("scope.name", "app.b"),)), ["b3", "b2", "b1"]),
    ("event.name", LogQuery(attributes=(("event.name", "order.lost"),)), ["a4"]),
    ("two attributes must both hold", LogQuery(attributes=(("user", "alice"), ("count", "4"))), []),
    ("attribute value mismatch", LogQuery(attributes=(("user", "nobody"),)), []),
    ("trace id", LogQuery(trace_id=TRACE_X), ["a2", "a1"]),
    ("span id", LogQuery(span_id=sid(3)), ["a3"]),
    ("trace and span id", LogQuery(trace_id=TRACE_X, span_id=sid(3)), []),
    ("unknown trace", LogQuery(trace_id=tid("nope")), []),
    ("everything at once", LogQuery(service_name="log-a", min_severity=13, body_contains="payment",
                                    start_ns=T, end_ns=T + 10 * SEC, trace_id=TRACE_Y), ["a3"]),
]


@pytest.mark.parametrize("caption,query,expected", SEARCHES, ids=[c for c, _, _ in SEARCHES])
def test_search(loaded: LogStore, caption: str, query: LogQuery, expected: list[str]) -> None:
    if query.service_name is None and query.trace_id is None and query.span_id is None:
        query = dataclasses.replace(query, end_ns=query.end_ns or T + 10 * SEC)  # leave out the pages
    page = loaded.search_logs(query)
    assert _labels(page.records) == expected, caption
    assert page.next_cursor is None
    # The same with a time range (read in windows by some stores) gives the same records.
    if query.start_ns is None:
        windowed = dataclasses.replace(query, start_ns=T + 1, end_ns=query.end_ns or T + 3600 * SEC)
        assert _labels(loaded.search_logs(windowed).records) == expected, caption


@pytest.mark.parametrize("limit", [1, 7, 30, 100])
def test_pages_over_a_sparse_range(loaded: LogStore, limit: int) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = loaded.search_logs(LogQuery(service_name="log-spread", start_ns=T - 3600 * SEC, end_ns=T + SEC,
                                           limit=limit, cursor=cursor))
        assert len(page.records) <= limit
        seen += _labels(page.records)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"s{k}" for k in range(30)]
    # A range that cuts the data: only what is inside, still newest first.
    page = loaded.search_logs(LogQuery(service_name="log-spread", start_ns=T - 400 * SEC, end_ns=T - 3 * SEC))
    assert _labels(page.records) == [f"s{k}" for k in range(1, 11)]


def test_paging_walks_every_record_once(loaded: LogStore) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = loaded.search_logs(LogQuery(service_name="log-page", limit=7, cursor=cursor))
        seen += _labels(page.records)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 4
    expected = [f"p{i}" for i in range(24, -1, -1)]  # within a second, the later log id first
    assert seen == expected


def test_limit_exactly_reached_has_no_next_page(loaded: LogStore) -> None:
    page = loaded.search_logs(LogQuery(service_name="log-a", limit=5))
    assert len(page.records) == 5 and page.next_cursor is None
    page = loaded.search_logs(LogQuery(service_name="log-a", limit=4))
    assert len(page.records) == 4 and page.next_cursor is not None
    rest = loaded.search_logs(LogQuery(service_name="log-a", limit=4, cursor=page.next_cursor))
    assert _labels(rest.records) == ["a1"] and rest.next_cursor is None


def test_histogram(loaded: LogStore) -> None:
    q = LogQuery(service_name="log-a", start_ns=T, end_ns=T + 10 * SEC, min_severity=1)
    assert loaded.log_histogram(q, 2 * SEC) == [LogBucket(T, 1), LogBucket(T + 2 * SEC, 2), LogBucket(T + 4 * SEC, 1)]
    # Buckets start at the query's start.
    shifted = LogQuery(service_name="log-a", start_ns=T + SEC, end_ns=T + 10 * SEC)
    assert loaded.log_histogram(shifted, 3 * SEC) == [LogBucket(T + SEC, 3), LogBucket(T + 4 * SEC, 2)]
    assert loaded.log_histogram(LogQuery(service_name="nobody"), SEC) == []


def test_logs_for_trace_oldest_first(loaded: LogStore) -> None:
    assert _labels(loaded.logs_for_trace(TRACE_Y)) == ["a3", "a4"]
    assert _labels(loaded.logs_for_trace(TRACE_X)) == ["a1", "a2"]
    assert loaded.logs_for_trace(tid("unknown")) == []


def test_bad_queries_name_the_field(loaded: LogStore) -> None:
    with pytest.raises(InvalidLogQuery) as err:
        loaded.search_logs(LogQuery(body_regex="a(b"))
    assert err.value.field == "body_regex"
    with pytest.raises(InvalidLogQuery) as err:
        loaded.search_logs(LogQuery(cursor="not-a-cursor"))
    assert err.value.field == "cursor"
    with pytest.raises(InvalidLogQuery):
        loaded.log_histogram(LogQuery(), 0)


# ---------------------------------------------------------------------------------------------
# Round trip, shared resources, commits, retention (fresh storage)
# ---------------------------------------------------------------------------------------------


def test_every_field_round_trips(site: Site) -> None:
    store = site.open()
    resource = ResourceSpec(service="rt-logs", attributes={"host.name": "h", "k8s.pod.uid": b"\x01\x02"},
                            dropped=2, schema_url="https://opentelemetry.io/schemas/1.26.0")
    scope = ScopeSpec(name="rt.scope", version="0.1", attributes={"scope.attr": 7}, dropped=1,
                      schema_url="https://example.com/scope")
    values = {"t.string": "héllo", "t.bool": True, "t.int": -42, "t.double": 2.5, "t.bytes": b"\x00\xff",
              "t.array": ["x", 1, [True]], "t.map": {"k": {"deep": 1.5}}, "t.empty": None}
    bodies = ["plain text", 42, 2.5, True, b"\x00bin", ["a", 1], {"msg": "structured", "n": [1, 2]}, None, ""]
    builder = LogBatchBuilder()
    for i, body in enumerate(bodies):
        builder.log(body, time_ns=T + i, observed_time_ns=T + 1000 + i, severity_number=i + 1,
                    severity_text=f"sev{i}", attributes={**values, "i": i}, dropped_attributes_count=3, flags=0x101,
                    trace_id=tid("rt-logs"), span_id=sid(9) if i % 2 else None, event_name=f"ev{i}",
                    resource=resource, scope=scope)
    store.write_logs(builder.build()).result(timeout=30)  # type: ignore[attr-defined]
    got = store.logs_for_trace(tid("rt-logs"))  # type: ignore[attr-defined]
    assert [decode_value(r.body) for r in got] == bodies
    for i, r in enumerate(got):
        assert (r.time_ns, r.observed_time_ns, r.severity_number, r.severity_text) == (T + i, T + 1000 + i, i + 1, f"sev{i}")
        assert {k: decode_value(v) for k, v in r.attributes.items()} == {**values, "i": i}
        assert (r.dropped_attributes_count, r.flags, r.trace_id, r.event_name) == (3, 0x101, tid("rt-logs"), f"ev{i}")
        assert r.span_id == (sid(9) if i % 2 else b"")
        assert r.service_name == "rt-logs"
        assert {k: decode_value(v) for k, v in r.resource.attributes.items()} == {
            "service.name": "rt-logs", "host.name": "h", "k8s.pod.uid": b"\x01\x02"}
        assert (r.resource.dropped_attributes_count, r.resource.schema_url) == (2, resource.schema_url)
        assert (r.scope.name, r.scope.version, r.scope.dropped_attributes_count, r.scope.schema_url) == (
            "rt.scope", "0.1", 1, scope.schema_url)
        assert {k: decode_value(v) for k, v in r.scope.attributes.items()} == {"scope.attr": 7}
    assert [r.body_text for r in got][:3] == ["plain text", "42", "2.5"]
    assert got[6].body_text == '{"msg":"structured","n":[1,2]}'
    # Results belong to the caller.
    got[0].attributes.clear()
    assert store.logs_for_trace(tid("rt-logs"))[0].attributes  # type: ignore[attr-defined]


def test_spans_and_logs_share_resources_and_commits(site: Site) -> None:
    store = site.open(commit_interval_ms=60_000)
    resource = ResourceSpec(service="shared-svc")  # the resource simple_trace gives its spans
    spans = simple_trace("shared", T, 3, "shared-svc")
    logs = LogBatchBuilder().log("with a span", trace_id=tid("shared"), span_id=sid(1), resource=resource).build()
    span_future = store.write_spans(spans.build())
    log_future = store.write_logs(logs)  # type: ignore[attr-defined]
    store.flush()
    assert span_future.result(timeout=0) is None and log_future.result(timeout=0) is None
    (record,) = store.logs_for_trace(tid("shared"))  # type: ignore[attr-defined]
    assert record.resource.service_name == "shared-svc"
    if isinstance(store, DuckLakeStore):
        assert store.stats().commits == 1, "spans and logs queued together commit together"
        cur = store._cursor()
        rows = cur.execute("SELECT count(*), count(DISTINCT resource_id) FROM lake.resources").fetchone()
        assert rows[0] == rows[1], "a resource sent with spans and logs is stored once"


def test_write_queue_counts_log_records(site: Site) -> None:
    if not site.supports("write_queue"):
        pytest.skip("backend has no write queue")
    store = site.open(max_queue_spans=100, commit_interval_ms=60_000)

    def batch(n: int) -> LogBatch:
        b = LogBatchBuilder()
        for i in range(n):
            b.log(f"q{i}", service="queue-logs")
        return b.build()

    first = store.write_logs(batch(60))  # type: ignore[attr-defined]
    with pytest.raises(WriteQueueFull):
        store.write_logs(batch(60))  # type: ignore[attr-defined]
    with pytest.raises(WriteQueueFull):
        store.write_spans(simple_trace("q-span", T, 60, "queue-logs").build())
    assert store.stats().queue_depth_spans == 60
    store.close()
    assert first.result(timeout=0) is None


def test_malformed_log_batch_is_refused(site: Site) -> None:
    if site.backend != "ducklake":
        pytest.skip("the memory store trusts its callers")
    store = site.open()
    batch = LogBatchBuilder().log("x").build()
    with pytest.raises(ValueError):
        store.write_logs(LogBatch(batch.logs.drop_columns(["body"]), batch.resources, batch.scopes))  # type: ignore[attr-defined]
    assert store.stats().queue_depth_spans == 0


def _parquet_log_times(root: Path) -> list[int]:
    times: list[int] = []
    for path in root.rglob("*.parquet"):
        if "logs" in path.parts:
            times += pq.read_table(path, columns=["time_ns"]).column("time_ns").to_pylist()
    return times


def test_retention_deletes_old_logs_but_not_archived_traces(site: Site) -> None:
    store = site.open(cleanup_grace_s=0)
    old, new, cutoff = T, T + 100 * SEC, T + 50 * SEC
    store.write_spans(simple_trace("keep-logs", old, 2, "ret-logs").build()).result(timeout=30)
    b = LogBatchBuilder()
    b.log("old", time_ns=old, service="ret-logs", attributes={"label": "old"})
    b.log("old uncorrelated", time_ns=old + 1, service="ret-logs", attributes={"label": "old-2"},
          trace_id=tid("gone"))
    b.log("old but archived", time_ns=old, service="ret-logs", trace_id=tid("keep-logs"), attributes={"label": "kept"})
    b.log("new", time_ns=new, service="ret-logs", attributes={"label": "new"})
    store.write_logs(b.build()).result(timeout=30)  # type: ignore[attr-defined]
    assert store.archive_trace(tid("keep-logs"))
    store.apply_retention(cutoff)
    page = store.search_logs(LogQuery(service_name="ret-logs"))  # type: ignore[attr-defined]
    assert _labels(page.records) == ["new", "kept"]
    assert _labels(store.logs_for_trace(tid("keep-logs"))) == ["kept"]  # type: ignore[attr-defined]
    assert store.logs_for_trace(tid("gone")) == []  # type: ignore[attr-defined]
    if site.supports("files"):
        times = _parquet_log_times(site.root)
        assert times, "expected log data in Parquet files"
        assert sorted(times) == [old, new], "expired log records are still in files on disk"
