"""Self time: the part of a span's duration not covered by any of its children.

Children are clipped to the parent's interval and their union is subtracted, so overlapping
(parallel) children are not counted twice and a child that overruns its parent does not make
the parent's self time negative.
"""

from __future__ import annotations

from ..assemble import AssembledTrace


def self_times(trace: AssembledTrace) -> list[int]:
    """Self time in nanoseconds of every span, indexed like ``trace.spans``."""
    starts, ends = trace.starts, trace.ends
    out = [0] * len(starts)
    for i, kids in enumerate(trace.children):
        start, end = starts[i], ends[i]
        if end <= start:
            continue
        if not kids:
            out[i] = end - start
            continue
        covered = 0
        run_start = run_end = start
        # Children are sorted by start time, and clipping keeps that order.
        for c in kids:
            cs, ce = starts[c], ends[c]
            if cs < start:
                cs = start
            if ce > end:
                ce = end
            if ce <= cs:
                continue
            if cs > run_end:
                covered += run_end - run_start
                run_start, run_end = cs, ce
            elif ce > run_end:
                run_end = ce
        covered += run_end - run_start
        out[i] = end - start - covered
    return out
