"""What is different about the selected spans: attribute values over-represented among them.

Spans are split into a selected group (slow, failed, ...) and the rest. For every span or
resource attribute value (compared by string form, as tag search does) the fraction of spans
carrying it is computed in both groups; values more frequent in the selected group are ranked by
the difference of the two fractions, with counts so the reader can judge the evidence.

Keys whose values are (nearly) unique per span, such as request ids, say nothing about a group
and are skipped: a key is ignored when it has more distinct values than ``max_distinct_ratio``
times the number of spans that carry it (and more than two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from spanlake.model import Span, string_form


@dataclass
class AttributeDifference:
    scope: str  # "span" or "resource"
    key: str
    value: str  # string form
    selected_count: int
    selected_total: int
    rest_count: int
    rest_total: int

    @property
    def selected_frequency(self) -> float:
        return self.selected_count / self.selected_total if self.selected_total else 0.0

    @property
    def rest_frequency(self) -> float:
        return self.rest_count / self.rest_total if self.rest_total else 0.0

    @property
    def difference(self) -> float:
        return self.selected_frequency - self.rest_frequency


def _values(span: Span) -> Iterable[tuple[str, str, str]]:
    for k, v in span.attributes.items():
        yield "span", k, string_form(v)
    for k, v in span.resource.attributes.items():
        yield "resource", k, string_form(v)


def over_represented_attributes(
    spans: Sequence[Span],
    selected: Sequence[bool] | Callable[[Span], bool],
    *,
    min_count: int = 1,
    min_difference: float = 0.0,
    max_distinct_ratio: float = 0.5,
    limit: int | None = 50,
) -> list[AttributeDifference]:
    """Attribute values more frequent among the selected spans than among the others.

    ``selected`` is one flag per span, or a predicate such as ``lambda s: s.is_error``. Values
    need at least ``min_count`` selected spans and a frequency difference above
    ``min_difference``. Sorted by difference, then selected count, largest first.
    """
    flags = [selected(s) for s in spans] if callable(selected) else [bool(x) for x in selected]
    if len(flags) != len(spans):
        raise ValueError("one selection flag per span is needed")
    n_selected = sum(flags)
    n_rest = len(spans) - n_selected

    counts: dict[tuple[str, str, str], list[int]] = {}
    spans_with_key: dict[tuple[str, str], int] = {}
    distinct: dict[tuple[str, str], int] = {}
    for span, flag in zip(spans, flags):
        for scope, key, value in _values(span):
            spans_with_key[(scope, key)] = spans_with_key.get((scope, key), 0) + 1
            c = counts.get((scope, key, value))
            if c is None:
                c = counts[(scope, key, value)] = [0, 0]
                distinct[(scope, key)] = distinct.get((scope, key), 0) + 1
            c[0 if flag else 1] += 1

    out = []
    for (scope, key, value), (sel, rest) in counts.items():
        d = distinct[(scope, key)]
        if d > 2 and d > max_distinct_ratio * spans_with_key[(scope, key)]:
            continue
        if sel < min_count:
            continue
        diff = AttributeDifference(scope, key, value, sel, n_selected, rest, n_rest)
        if diff.difference > min_difference:
            out.append(diff)
    out.sort(key=lambda x: (-x.difference, -x.selected_count, x.scope, x.key, x.value))
    return out if limit is None else out[:limit]


def split_by_duration(spans: Sequence[Span], threshold_ns: int) -> list[bool]:
    """Selection flags for "slow" spans: duration at or above ``threshold_ns``."""
    return [s.duration_ns >= threshold_ns for s in spans]
