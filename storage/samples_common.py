"""What every sample store shares: query validation, label matching, exemplar choice, ordering.

The DuckLake store runs matchers in SQL; the memory store with :func:`matches` here. Both
validate with :func:`check_query` first, so they refuse the same queries with the same words.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from spanlake.storage.api import Exemplar, InvalidSampleQuery, LabelMatcher, SampleQuery, SampleSeries

MATCH_OPS = ("=", "!=", "=~", "!~")
#: Prometheus refuses range queries of more points per series than this.
MAX_STEPS = 11_000
#: The label name matchers use for the metric name, as in PromQL.
NAME_LABEL = "__name__"


def check_query(q: SampleQuery) -> None:
    """Raise :class:`InvalidSampleQuery` naming what is wrong with ``q``."""
    if not q.metrics and not any(m.name == NAME_LABEL for m in q.matchers):
        raise InvalidSampleQuery("a metric name is required")
    if q.step_ns <= 0:
        raise InvalidSampleQuery("step must be positive")
    if q.end_ns <= q.start_ns:
        raise InvalidSampleQuery("end must be after start")
    if (q.end_ns - q.start_ns) // q.step_ns > MAX_STEPS:
        raise InvalidSampleQuery(
            f"exceeded maximum resolution of {MAX_STEPS} points per series: use a larger step or a shorter range"
        )
    for m in q.matchers:
        if m.op not in MATCH_OPS:
            raise InvalidSampleQuery(f"unknown matcher operator {m.op!r} for label {m.name!r} (use =, !=, =~, !~)")
        if m.op in ("=~", "!~"):
            try:
                re.compile(m.value)
            except re.error as e:
                raise InvalidSampleQuery(f"invalid regular expression for label {m.name!r}: {e}") from None


def matches(metric: str, labels: Mapping[str, str], matchers: Iterable[LabelMatcher]) -> bool:
    """Prometheus semantics: a missing label is the empty string; regexes are anchored."""
    for m in matchers:
        value = metric if m.name == NAME_LABEL else labels.get(m.name, "")
        if m.op == "=":
            ok = value == m.value
        elif m.op == "!=":
            ok = value != m.value
        elif m.op == "=~":
            ok = re.fullmatch(m.value, value) is not None
        else:
            ok = re.fullmatch(m.value, value) is None
        if not ok:
            return False
    return True


def latest_per_bucket(exemplars: Iterable[Mapping | Exemplar | None]) -> list[Exemplar]:
    """The latest exemplar of each bucket, ordered by bucket."""
    best: dict[int, Exemplar] = {}
    for e in exemplars:
        if e is None:
            continue
        if not isinstance(e, Exemplar):
            e = Exemplar(int(e["bucket"]), float(e["value"]), int(e["time_ns"]), e["trace_id"] or "", e["span_id"] or "")
        cur = best.get(e.bucket)
        if cur is None or e.time_ns >= cur.time_ns:
            best[e.bucket] = e
    return [best[b] for b in sorted(best)]


def sort_series(series: list[SampleSeries]) -> list[SampleSeries]:
    series.sort(key=lambda s: (s.metric, sorted(s.labels.items()), s.kind))
    return series
