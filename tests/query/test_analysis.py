"""Analysis: self time, critical path, per-trace breakdown, latency, compare, attributes."""

from __future__ import annotations

import time

import pytest

from spanlake.model import encode_int, encode_string
from spanlake.query.analysis.attributes import over_represented_attributes, split_by_duration
from spanlake.query.analysis.compare import compare_traces, span_paths
from spanlake.query.analysis.critical_path import critical_path
from spanlake.query.analysis.latency import (
    TraceRow,
    bucket_bounds,
    bucket_index,
    latency_histogram,
    latency_series,
    summarize_latency,
    trace_row,
)
from spanlake.query.analysis.self_time import self_times
from spanlake.query.analysis.trace_stats import analyze_trace
from spanlake.query.assemble import assemble_trace

PRODUCER, CONSUMER = 4, 5


# --- self time ---------------------------------------------------------------------------------


def test_self_time_with_overlapping_and_overrunning_children(mk):
    spans = [
        mk(1, None, start=0, dur=100),
        mk(2, 1, start=10, dur=30),  # [10, 40)
        mk(3, 1, start=30, dur=30),  # [30, 60): overlaps 2, counted once
        mk(4, 1, start=80, dur=40),  # [80, 120): clipped to [80, 100)
        mk(5, 3, start=35, dur=5),  # grandchild: not the root's business
    ]
    own = self_times(assemble_trace(spans))
    assert own == [100 - 50 - 20, 30, 30 - 5, 40, 5]


def test_self_time_of_empty_or_negative_span(mk):
    assert self_times(assemble_trace([mk(1, dur=0), mk(2, dur=-5)])) == [0, 0]


# --- critical path ---------------------------------------------------------------------------


def cp_tree(mk):
    # A [0,100) with B [10,40) and C [50,90); C has D [55,70).
    return [
        mk(1, None, start=0, dur=100, name="A"),
        mk(2, 1, start=10, dur=30, name="B"),
        mk(3, 1, start=50, dur=40, name="C"),
        mk(4, 3, start=55, dur=15, name="D"),
    ]


def test_critical_path_on_known_tree(mk):
    cp = critical_path(assemble_trace(cp_tree(mk)))
    assert [(s.span_index, s.start_ns, s.end_ns) for s in cp.sections] == [
        (0, 90, 100),
        (2, 70, 90),
        (3, 55, 70),
        (2, 50, 55),
        (0, 40, 50),
        (1, 10, 40),
        (0, 0, 10),
    ]
    assert cp.time_by_span == {0: 30, 2: 25, 3: 15, 1: 30}
    assert sum(cp.time_by_span.values()) == 100
    assert cp.share_by_span[0] == pytest.approx(0.3)
    assert cp.span_indices == [0, 2, 3, 1]


def test_critical_path_skips_child_overlapping_the_chosen_one(mk):
    # B [0,10) ends after C starts: the walk goes back from C's start (5) and finds no child.
    spans = [mk(1, None, start=0, dur=20), mk(2, 1, start=0, dur=10), mk(3, 1, start=5, dur=15)]
    cp = critical_path(assemble_trace(spans))
    assert cp.time_by_span == {2: 15, 0: 5}


def test_critical_path_clips_and_drops_overflowing_children(mk):
    spans = [
        mk(1, None, start=100, dur=100),
        mk(2, 1, start=150, dur=200),  # ends after the parent: clipped to [150, 200)
        mk(3, 1, start=300, dur=10),  # entirely after the parent: dropped
        mk(4, 3, start=300, dur=5),  # dropped with its parent
        mk(5, 1, start=50, dur=70),  # starts before the parent: clipped to [100, 120)
    ]
    cp = critical_path(assemble_trace(spans))
    assert cp.time_by_span == {1: 50, 0: 30, 4: 20}


def test_consumer_under_producer_is_not_blocking(mk):
    spans = [
        mk(1, None, start=0, dur=100, kind=PRODUCER),
        mk(2, 1, start=50, dur=40, kind=CONSUMER),
    ]
    cp = critical_path(assemble_trace(spans))
    assert cp.time_by_span == {0: 100}


def test_critical_path_of_deep_chain_and_wide_fanout(mk):
    chain = [mk(i, i - 1 if i > 1 else None, start=i, dur=3 * 10_000 - 2 * i) for i in range(1, 10_001)]
    cp = critical_path(assemble_trace(chain))
    assert sum(cp.time_by_span.values()) == chain[0].duration_ns
    fan = [mk(1, None, start=0, dur=30_000)] + [mk(i, 1, start=2 * i, dur=1) for i in range(2, 10_001)]
    t0 = time.perf_counter()
    cp = critical_path(assemble_trace(fan))
    assert time.perf_counter() - t0 < 1.0
    assert sum(cp.time_by_span.values()) == 30_000
    assert len(cp.time_by_span) == 10_000


def test_critical_path_multiple_roots(mk):
    spans = [mk(1, None, start=0, dur=10), mk(2, 99, start=20, dur=10)]
    cp = critical_path(assemble_trace(spans))
    assert cp.time_by_span == {0: 10, 1: 10}
    assert cp.trace_duration_ns == 30


# --- per-trace breakdown -----------------------------------------------------------------------


def test_analyze_trace_breakdown(mk):
    spans = [
        mk(1, None, start=0, dur=100, service="front", name="GET /"),
        mk(2, 1, start=10, dur=30, service="back", name="query"),
        mk(3, 1, start=50, dur=40, service="back", name="query", status=2),
        mk(4, 3, start=55, dur=15, service="db", name="SELECT"),
    ]
    a = analyze_trace(spans)
    assert (a.span_count, a.error_count, a.depth, a.duration_ns) == (4, 1, 3, 100)
    assert a.services == ["back", "db", "front"]
    assert (a.root_service, a.root_operation) == ("front", "GET /")
    assert a.self_ns == [30, 30, 25, 15]
    back = next(g for g in a.by_service if g.service == "back")
    assert (back.count, back.total_ns, back.self_ns, back.errors) == (2, 70, 55, 1)
    assert back.critical_path_ns == 30 + 25
    assert back.share_of_trace == pytest.approx(0.55)
    assert [g.service for g in a.by_service] == ["back", "front", "db"]
    op = next(g for g in a.by_operation if g.operation == "query")
    assert (op.service, op.count, op.self_ns) == ("back", 2, 55)
    assert a.trace_id == spans[0].trace_id


# --- latency across traces ---------------------------------------------------------------------


def test_latency_summary_percentiles():
    rows = [TraceRow(d, d % 10 == 0, d, d.to_bytes(16, "big")) for d in range(1, 101)]
    s = summarize_latency(rows)
    assert (s.count, s.error_count, s.error_rate) == (100, 10, 0.1)
    assert (s.p50_ns, s.p90_ns, s.p95_ns, s.p99_ns, s.max_ns) == (50, 90, 95, 99, 100)
    assert summarize_latency([]).count == 0 and summarize_latency([]).p50_ns is None
    assert summarize_latency([(7, False, 0, b"x")]).p99_ns == 7


def test_rows_from_traces(mk):
    trace = [mk(1, None, start=100, dur=50), mk(2, 1, start=120, dur=60, status=2)]
    assert trace_row(trace) == TraceRow(80, True, 100, trace[0].trace_id)
    assert summarize_latency([trace]).max_ns == 80


def test_histogram_log_buckets_with_examples():
    assert bucket_bounds(0, 1) == (1, 10)
    assert bucket_bounds(3, 1) == (1000, 10_000)
    assert bucket_index(999, 1) == 2 and bucket_index(1000, 1) == 3
    assert bucket_index(0, 5) == 0
    for d in (1, 2, 3, 7, 99, 100, 101, 12_345, 10**9):
        lo, hi = bucket_bounds(bucket_index(d, 5), 5)
        assert lo <= d < hi
    rows = [TraceRow(d, d > 50_000, 0, bytes([i])) for i, d in enumerate([1_000, 1_500, 1_200, 1_100, 80_000])]
    h = latency_histogram(rows, buckets_per_decade=1, examples_per_bucket=2)
    assert [(b.lower_ns, b.upper_ns, b.count, b.error_count) for b in h] == [
        (1_000, 10_000, 4, 0),
        (10_000, 100_000, 1, 1),
    ]
    assert h[0].example_trace_ids == [bytes([0]), bytes([1])]
    h = latency_histogram([TraceRow(10, False, 0, b"a"), TraceRow(10_000, False, 0, b"b")], buckets_per_decade=1)
    assert [b.count for b in h] == [1, 0, 0, 1]  # empty buckets in between are kept
    assert latency_histogram([]) == []


def test_latency_time_series():
    rows = [
        TraceRow(10, False, 1_005, b"a"),
        TraceRow(30, True, 1_009, b"b"),
        TraceRow(20, False, 1_031, b"c"),
    ]
    series = latency_series(rows, step_ns=10)
    assert [p.time_ns for p in series] == [1_000, 1_010, 1_020, 1_030]
    assert [p.summary.count for p in series] == [2, 0, 0, 1]
    assert series[0].summary.error_rate == 0.5 and series[0].summary.max_ns == 30
    assert series[1].summary.p50_ns is None
    windowed = latency_series(rows, step_ns=10, start_ns=1_010, end_ns=1_040)
    assert [p.summary.count for p in windowed] == [0, 0, 1]


# --- compare ---------------------------------------------------------------------------------


def test_compare_two_traces(mk):
    a = [
        mk(1, None, start=0, dur=100, service="front", name="GET /"),
        mk(2, 1, start=10, dur=20, service="db", name="SELECT"),
        mk(3, 1, start=40, dur=20, service="db", name="SELECT"),
        mk(4, 1, start=70, dur=10, service="cache", name="GET"),
    ]
    b = [
        mk(1, None, start=0, dur=160, service="front", name="GET /"),
        mk(2, 1, start=10, dur=20, service="db", name="SELECT"),
        mk(3, 1, start=40, dur=80, service="db", name="SELECT"),  # the second SELECT got slow
        mk(5, 1, start=130, dur=20, service="auth", name="check"),  # new call
    ]
    cmp = compare_traces(a, b)
    assert (cmp.duration_a_ns, cmp.duration_b_ns, cmp.duration_delta_ns) == (100, 160, 60)
    assert cmp.matched == 3
    assert [(c.service, c.operation, c.path[-1][2]) for c in cmp.changed] == [("db", "SELECT", 1), ("front", "GET /", 0)]
    slow = cmp.changed[0]
    assert (slow.duration_delta_ns, slow.self_delta_ns, slow.impact_ns) == (60, 60, 60)
    assert slow.path == (("front", "GET /", 0), ("db", "SELECT", 1))
    root = cmp.changed[1]
    assert (root.duration_delta_ns, root.self_delta_ns) == (60, -10)  # 100-50 vs 160-120
    assert [o.path[-1][:2] for o in cmp.only_in_a] == [("cache", "GET")]
    assert [o.path[-1][:2] for o in cmp.only_in_b] == [("auth", "check")]
    assert compare_traces(a, a).changed == []


def test_span_paths_count_repeated_siblings(mk):
    spans = [mk(1, None, name="r"), mk(2, 1, start=5, name="q"), mk(3, 1, start=1, name="q")]
    paths = span_paths(spans)
    assert paths[1] == (("svc", "r", 0), ("svc", "q", 1))
    assert paths[2] == (("svc", "r", 0), ("svc", "q", 0))


def test_compare_deep_traces_is_linear(mk):
    a = [mk(i, i - 1 if i > 1 else None, start=i, dur=100_000 - i) for i in range(1, 10_001)]
    b = [mk(i, i - 1 if i > 1 else None, start=i, dur=100_000 - i) for i in range(1, 10_001)]
    t0 = time.perf_counter()
    cmp = compare_traces(a, b)
    assert time.perf_counter() - t0 < 2.0
    assert cmp.matched == 10_000 and cmp.changed == []


# --- over-represented attributes ---------------------------------------------------------------


def test_over_represented_attributes(mk):
    spans = []
    for i in range(40):
        slow = i < 10
        region = "eu" if (slow and i < 8) or (not slow and i < 13) else "us"
        attrs = {
            "region": encode_string(region),
            "request.id": encode_string(f"req-{i}"),  # unique per span: ignored
            "retries": encode_int(3 if slow else 0),
        }
        spans.append(mk(i + 1, None, dur=1000 if slow else 10, attrs=attrs, service="api"))
    diffs = over_represented_attributes(spans, split_by_duration(spans, 500))
    top = diffs[0]
    assert (top.scope, top.key, top.value) == ("span", "retries", "3")
    assert (top.selected_count, top.selected_total, top.rest_count, top.rest_total) == (10, 10, 0, 30)
    assert top.difference == 1.0
    region = next(d for d in diffs if d.key == "region")
    assert region.value == "eu"
    assert (region.selected_count, region.rest_count) == (8, 3)
    assert region.difference == pytest.approx(0.8 - 0.1)
    assert not any(d.key == "request.id" for d in diffs)
    # service.name is the same everywhere: not over-represented.
    assert not any(d.scope == "resource" for d in diffs)


def test_over_represented_with_predicate(mk):
    spans = [
        mk(1, status=2, host="bad"),
        mk(2, status=2, host="bad"),
        mk(3, host="good"),
        mk(4, host="good"),
        mk(5, host="bad"),
    ]
    diffs = over_represented_attributes(spans, lambda s: s.is_error, limit=1)
    assert [(d.scope, d.key, d.value, d.selected_count, d.rest_count) for d in diffs] == [
        ("resource", "host.name", "bad", 2, 1)
    ]
    with pytest.raises(ValueError):
        over_represented_attributes(spans, [True])
