"""What every adjuster takes and returns, and how a list of them is applied.

An adjuster is a callable ``(AdjusterInput) -> AdjusterInput``: the spans of one trace with a
warnings list per span (parallel to the spans, so dropping a span drops its warnings) and the
trace-level warnings. Adjusters never mutate the spans they are given: a span they change is
replaced by a modified copy, so a store may hand the query side objects it keeps. Nor do they
change a warnings list in place: an adjuster that warns about a span gives it a new list, so the
lists of unchanged spans can be shared between an adjuster's input and output (copying 100,000
lists per adjuster was a measurable share of adjusting a large trace).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from spanlake.model import Span


@dataclass
class AdjusterInput:
    """One trace between adjusters: ``span_warnings[i]`` belongs to ``spans[i]``."""

    spans: list[Span]
    span_warnings: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.span_warnings:
            self.span_warnings = [[] for _ in self.spans]
        if len(self.span_warnings) != len(self.spans):
            raise ValueError("span_warnings must have one list per span")

    @staticmethod
    def of(spans: Iterable[Span]) -> "AdjusterInput":
        return AdjusterInput(list(spans))

    def warnings_by_index(self) -> dict[int, list[str]]:
        """The per-span warnings in the form :func:`~spanlake.query.assemble.assemble_trace` uses."""
        return {i: list(w) for i, w in enumerate(self.span_warnings) if w}


Adjuster = Callable[[AdjusterInput], AdjusterInput]


def apply_adjusters(trace: AdjusterInput, adjusters: Iterable[Adjuster]) -> AdjusterInput:
    for adjust in adjusters:
        trace = adjust(trace)
    return trace


def copy_span(span: Span) -> Span:
    """A copy whose attribute maps, events and links may be changed without touching ``span``.

    The resource and scope stay shared: adjusters that change them replace them whole.
    """
    new = shallow_copy(span)
    new.attributes = dict(span.attributes)
    if span.events:
        new.events = [shallow_copy(e) for e in span.events]
        for e in new.events:
            e.attributes = dict(e.attributes)
    else:
        new.events = []
    if span.links:
        new.links = [shallow_copy(link) for link in span.links]
        for link in new.links:
            link.attributes = dict(link.attributes)
    else:
        new.links = []
    return new


def shallow_copy(obj: Any) -> Any:
    """A shallow copy of a (non-slotted) dataclass instance."""
    # copy.copy is several times slower, and adjusters copy every span of 100,000-span traces.
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new
