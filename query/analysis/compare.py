"""Compare two traces span by span.

Spans are matched by their *path*: the (service, operation) of every span from the root down,
where each step also carries an occurrence number counting earlier siblings (by start time) with
the same service and operation, so the third ``SELECT`` under a handler matches the third one in
the other trace. Paths are interned in one table shared by both traces, which keeps matching
linear even for very deep traces.

The result lists spans found in only one trace (largest first) and matched spans whose duration
or self time changed, sorted by impact: the absolute change in self time, then in duration.
Self time is what a span itself added, so a slow leaf ranks first while its ancestors, whose
duration grew only because of it, rank behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spanlake.model import Span

from ..assemble import AssembledTrace, assemble_trace
from .self_time import self_times

PathStep = tuple[str, str, int]  # service, operation, occurrence among same-named siblings


@dataclass
class SpanOnlyIn:
    path: tuple[PathStep, ...]
    index: int
    duration_ns: int
    self_ns: int


@dataclass
class SpanChange:
    path: tuple[PathStep, ...]
    a_index: int
    b_index: int
    duration_a_ns: int
    duration_b_ns: int
    self_a_ns: int
    self_b_ns: int

    @property
    def service(self) -> str:
        return self.path[-1][0]

    @property
    def operation(self) -> str:
        return self.path[-1][1]

    @property
    def duration_delta_ns(self) -> int:
        return self.duration_b_ns - self.duration_a_ns

    @property
    def self_delta_ns(self) -> int:
        return self.self_b_ns - self.self_a_ns

    @property
    def impact_ns(self) -> int:
        return abs(self.self_delta_ns)


@dataclass
class TraceComparison:
    duration_a_ns: int
    duration_b_ns: int
    matched: int
    only_in_a: list[SpanOnlyIn] = field(default_factory=list)
    only_in_b: list[SpanOnlyIn] = field(default_factory=list)
    changed: list[SpanChange] = field(default_factory=list)

    @property
    def duration_delta_ns(self) -> int:
        return self.duration_b_ns - self.duration_a_ns


class _PathTable:
    """Interns paths as (parent path id, step) -> id, and can spell an id out again."""

    def __init__(self) -> None:
        self.ids: dict[tuple[int, PathStep], int] = {}
        self.entries: list[tuple[int, PathStep]] = []

    def intern(self, parent: int, step: PathStep) -> int:
        key = (parent, step)
        pid = self.ids.get(key)
        if pid is None:
            pid = self.ids[key] = len(self.entries)
            self.entries.append(key)
        return pid

    def spell(self, pid: int) -> tuple[PathStep, ...]:
        steps = []
        while pid >= 0:
            pid, step = self.entries[pid]
            steps.append(step)
        return tuple(reversed(steps))


def _path_ids(trace: AssembledTrace, table: _PathTable) -> list[int]:
    spans = trace.spans
    ids = [-1] * len(spans)

    def number(parent_id: int, siblings: list[int]) -> None:
        seen: dict[tuple[str, str], int] = {}
        for i in siblings:
            key = (spans[i].service_name, spans[i].name)
            occurrence = seen.get(key, 0)
            seen[key] = occurrence + 1
            ids[i] = table.intern(parent_id, (key[0], key[1], occurrence))

    number(-1, trace.roots)
    for i in trace.order:  # pre-order: a parent's id is known before its children's
        if trace.children[i]:
            number(ids[i], trace.children[i])
    return ids


def span_paths(trace: AssembledTrace | list[Span]) -> list[tuple[PathStep, ...]]:
    """The matching path of every span (for display; :func:`compare_traces` does not need it)."""
    if not isinstance(trace, AssembledTrace):
        trace = assemble_trace(trace)
    table = _PathTable()
    return [table.spell(pid) for pid in _path_ids(trace, table)]


def compare_traces(
    a: AssembledTrace | list[Span], b: AssembledTrace | list[Span], *, min_change_ns: int = 1
) -> TraceComparison:
    """Match the spans of ``a`` and ``b`` and report what differs.

    A matched pair is reported as changed when its duration or self time differs by at least
    ``min_change_ns``. When several spans share a path (duplicate ids, for instance) they are
    paired in order and the rest count as only-in.
    """
    if not isinstance(a, AssembledTrace):
        a = assemble_trace(a)
    if not isinstance(b, AssembledTrace):
        b = assemble_trace(b)
    table = _PathTable()
    paths_a, paths_b = _path_ids(a, table), _path_ids(b, table)
    self_a, self_b = self_times(a), self_times(b)

    by_path_b: dict[int, list[int]] = {}
    for j in b.order:
        by_path_b.setdefault(paths_b[j], []).append(j)
    used_b: set[int] = set()
    result = TraceComparison(a.duration_ns, b.duration_ns, matched=0)
    for i in a.order:
        candidates = by_path_b.get(paths_a[i])
        if not candidates:
            sa = a.spans[i]
            result.only_in_a.append(SpanOnlyIn(table.spell(paths_a[i]), i, sa.duration_ns, self_a[i]))
            continue
        j = candidates.pop(0)
        used_b.add(j)
        result.matched += 1
        da, db = a.spans[i].duration_ns, b.spans[j].duration_ns
        if abs(db - da) >= min_change_ns or abs(self_b[j] - self_a[i]) >= min_change_ns:
            result.changed.append(SpanChange(table.spell(paths_a[i]), i, j, da, db, self_a[i], self_b[j]))
    for j in b.order:
        if j not in used_b:
            sb = b.spans[j]
            result.only_in_b.append(SpanOnlyIn(table.spell(paths_b[j]), j, sb.duration_ns, self_b[j]))

    result.changed.sort(key=lambda c: (-c.impact_ns, -abs(c.duration_delta_ns)))
    result.only_in_a.sort(key=lambda s: -s.duration_ns)
    result.only_in_b.sort(key=lambda s: -s.duration_ns)
    return result
