"""Trace assembly: tree shape, ordering, odd input, and speed on large and deep traces."""

from __future__ import annotations

import gc
import random
import time

from spanlake.query.assemble import assemble_trace


def test_tree_children_ordered_by_start_and_depth(mk):
    spans = [
        mk(3, 1, start=50),
        mk(1, None, start=0, dur=100),
        mk(2, 1, start=10),
        mk(4, 2, start=12),
        mk(5, 1, start=10),  # same start as span 2: input order breaks the tie
    ]
    t = assemble_trace(spans)
    assert t.roots == [1]
    assert t.children[1] == [2, 4, 0]
    assert t.children[2] == [3]
    assert t.parent == [1, -1, 1, 2, 1]
    assert t.depth == [1, 0, 1, 2, 1]
    assert t.order == [1, 2, 3, 4, 0]
    assert t.max_depth == 3
    assert t.span_warnings == {} and t.warnings == []
    assert (t.start_ns, t.end_ns, t.duration_ns) == (0, 100, 100)


def test_missing_parent_becomes_extra_root_with_warning(mk):
    spans = [mk(1, None, start=5), mk(2, 99, start=0), mk(3, 2, start=1)]
    t = assemble_trace(spans)
    assert t.roots == [1, 0]  # ordered by start time
    assert t.children[1] == [2]
    assert t.span_warnings == {1: ["parent span ID=0000000000000063 is not in the trace"]}
    assert t.warnings == ["1 span(s) have a parent that is not in the trace"]


def test_all_zero_parent_id_is_a_root(mk):
    s = mk(1)
    s.parent_span_id = bytes(8)
    t = assemble_trace([s])
    assert t.roots == [0] and t.span_warnings == {}


def test_duplicate_span_ids_are_kept_and_flagged(mk):
    spans = [mk(1, None, dur=100), mk(2, 1, start=10), mk(2, 1, start=20), mk(3, 2, start=30)]
    t = assemble_trace(spans)
    assert len(t.order) == 4
    assert t.children[0] == [1, 2]
    # Children of a duplicated id hang under the first span with that id.
    assert t.children[1] == [3] and t.children[2] == []
    assert t.span_warnings == {2: ["duplicate span ID=0000000000000002; kept as a separate span"]}
    assert t.warnings == ["1 span(s) share their span ID with another span"]
    assert t.index_by_id[(2).to_bytes(8, "big")] == 1


def test_parent_cycles_are_broken(mk):
    spans = [mk(1, 2, start=0), mk(2, 1, start=5), mk(3, 3, start=9), mk(4, 1, start=7)]
    t = assemble_trace(spans)
    assert sorted(t.order) == [0, 1, 2, 3]
    assert len(t.roots) == 2
    assert 2 in t.roots  # the self-parented span
    assert t.warnings == ["2 cycle(s) of parent span IDs were broken"]
    assert all("its own ancestor" in w[0] for w in t.span_warnings.values())


def test_several_trace_ids_give_a_trace_warning(mk):
    t = assemble_trace([mk(1, trace=1), mk(2, trace=2)])
    assert t.warnings == ["spans of 2 different trace IDs were assembled together"]


def test_empty_trace(mk):
    t = assemble_trace([])
    assert t.roots == [] and t.order == [] and t.duration_ns == 0 and t.max_depth == 0


def _random_tree(mk, n: int, seed: int = 7) -> list:
    rng = random.Random(seed)
    spans = [mk(1, None, start=0, dur=10**9)]
    for i in range(2, n + 1):
        spans.append(mk(i, rng.randint(max(1, i - 50), i - 1), start=rng.randint(0, 10**9), dur=1000))
    rng.shuffle(spans)
    return spans


def test_100k_span_trace_assembles_without_quadratic_work(mk):
    spans = _random_tree(mk, 100_000)
    t = assemble_trace(spans)
    assert len(t.order) == len(spans) and len(t.roots) == 1
    for i in t.order[:1000]:
        kids = t.children[i]
        assert [spans[k].start_ns for k in kids] == sorted(spans[k].start_ns for k in kids)
    # A scaling check, not a time limit: 10x the spans must cost far less than the 100x that
    # quadratic work would (best of three runs each, so a busy machine does not decide it; the
    # cyclic GC off while timing, since its full passes grow with the heap, not the algorithm).
    small = _random_tree(mk, 10_000)

    def best(spans_) -> float:
        times = []
        for _ in range(3):
            gc.disable()
            try:
                t0 = time.perf_counter()
                assemble_trace(spans_)
                times.append(time.perf_counter() - t0)
            finally:
                gc.enable()
        return min(times)

    ratio = best(spans) / best(small)
    assert ratio < 40, f"100k spans took {ratio:.0f}x the time of 10k"


def test_10000_deep_chain_does_not_recurse(mk):
    n = 10_000
    spans = [mk(i, i - 1 if i > 1 else None, start=i) for i in range(1, n + 1)]
    spans.reverse()
    t = assemble_trace(spans)
    assert t.max_depth == n
    assert t.depth[0] == n - 1
    assert t.order[0] == n - 1
