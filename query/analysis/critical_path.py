"""Critical path of a trace, computed the way jaeger-ui's ``CriticalPath`` does.

For each root: children that start or end outside their parent are clipped to it (dropped, with
their subtrees, when entirely outside), and consumer spans under a producer are left out because
they do not block their parent. Then, starting at the root, the walk goes down to the child that
finished last; a span without such a child is on the path from its start to the time the walk
entered it, and the walk returns to its parent looking for the child that finished last *before*
that start. The time of a parent not covered by the chosen children is the parent's own share.

The walk is a loop, not recursion, and finding "the last child finishing before t" is a binary
search, so long chains and wide fan-outs both stay cheap.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from spanlake.model import SPAN_KIND_NUMBERS

from ..assemble import AssembledTrace

_PRODUCER = SPAN_KIND_NUMBERS["producer"]
_CONSUMER = SPAN_KIND_NUMBERS["consumer"]


@dataclass
class CriticalPathSection:
    span_index: int
    start_ns: int
    end_ns: int

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class CriticalPath:
    #: Sections in the order the walk finds them (latest first within each root).
    sections: list[CriticalPathSection] = field(default_factory=list)
    #: Critical-path time per span index (only spans on the path).
    time_by_span: dict[int, int] = field(default_factory=dict)
    #: ``time_by_span`` as a fraction of the trace duration.
    share_by_span: dict[int, float] = field(default_factory=dict)
    trace_duration_ns: int = 0

    @property
    def span_indices(self) -> list[int]:
        """Spans on the path, in the order the path reaches them."""
        return list(dict.fromkeys(s.span_index for s in self.sections))


def critical_path(trace: AssembledTrace) -> CriticalPath:
    spans = trace.spans
    n = len(spans)
    start = list(trace.starts)  # clipped below: copies, not the trace's own lists
    end = list(trace.ends)
    kind = [s.kind for s in spans]
    keep = [True] * n
    kids: list[list[int]] = [[] for _ in range(n)]
    parent = trace.parent

    # Clip children to their parent, parents first (trace.order is a pre-order).
    for i in trace.order:
        p = parent[i]
        if p < 0:
            continue
        if not keep[p] or (kind[p] == _PRODUCER and kind[i] == _CONSUMER):
            keep[i] = False
            continue
        ps, pe, cs, ce = start[p], end[p], start[i], end[i]
        if (cs >= pe) if cs >= ps else (ce <= ps):
            keep[i] = False
            continue
        start[i], end[i] = max(cs, ps), min(ce, pe)
        kids[p].append(i)

    result = CriticalPath(trace_duration_ns=trace.duration_ns)
    sorted_kids: dict[int, tuple[list[int], list[int]]] = {}

    def last_finishing(i: int, before: int | None) -> int:
        entry = sorted_kids.get(i)
        if entry is None:
            # Ties on end time go to the earlier-starting child, as jaeger-ui's strict ">" does.
            order = sorted(range(len(kids[i])), key=lambda k: (end[kids[i][k]], k))
            ordered = [kids[i][k] for k in order]
            entry = sorted_kids[i] = (ordered, [end[c] for c in ordered])
        ordered, ends = entry
        k = len(ends) if before is None else bisect_left(ends, before)
        if k == 0:
            return -1
        return ordered[bisect_left(ends, ends[k - 1])]

    sections = result.sections
    for root in trace.roots:
        cur, entered_at = root, None
        while True:
            section_end = end[cur] if entered_at is None else entered_at
            child = last_finishing(cur, entered_at)
            if child >= 0:
                if end[child] != section_end:
                    sections.append(CriticalPathSection(cur, end[child], section_end))
                cur, entered_at = child, None
                continue
            if start[cur] != section_end:
                sections.append(CriticalPathSection(cur, start[cur], section_end))
            if cur == root:
                break
            cur, entered_at = trace.parent[cur], start[cur]

    for sec in sections:
        result.time_by_span[sec.span_index] = result.time_by_span.get(sec.span_index, 0) + sec.duration_ns
    if result.trace_duration_ns > 0:
        result.share_by_span = {i: t / result.trace_duration_ns for i, t in result.time_by_span.items()}
    return result
