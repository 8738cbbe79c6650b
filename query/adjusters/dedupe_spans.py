"""Drop spans that are exact copies of an earlier span (Jaeger's ``DeduplicateSpans``).

Two spans are duplicates when every field is equal, including resource and scope (attribute
order does not matter). The first copy is kept; the trace gets one warning saying how many
copies were dropped. Spans that merely share a span id are *not* dropped.
"""

from __future__ import annotations

from typing import Any

from spanlake.model import Span

from .base import AdjusterInput


def _attrs(attrs: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(attrs.items()))


def span_identity(s: Span) -> tuple[Any, ...]:
    """A hashable value equal for two spans exactly when they are identical."""
    r, sc = s.resource, s.scope
    return (
        s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.duration_ns,
        s.status_code, s.status_message, s.trace_state, s.flags, _attrs(s.attributes),
        s.dropped_attributes_count,
        tuple((e.time_ns, e.name, _attrs(e.attributes), e.dropped_attributes_count) for e in s.events),
        s.dropped_events_count,
        tuple(
            (k.trace_id, k.span_id, k.trace_state, k.flags, _attrs(k.attributes), k.dropped_attributes_count)
            for k in s.links
        ),
        s.dropped_links_count,
        (_attrs(r.attributes), r.dropped_attributes_count, r.schema_url),
        (sc.name, sc.version, _attrs(sc.attributes), sc.dropped_attributes_count, sc.schema_url),
    )


def dedupe_spans(trace: AdjusterInput) -> AdjusterInput:
    # Identical spans share their span id: when no two spans do, there is nothing to drop.
    if len({s.span_id for s in trace.spans}) == len(trace.spans):
        return trace
    # A cheap key finds the candidates; the full identity is built only when two spans share it.
    by_cheap_key: dict[tuple[Any, ...], list[int]] = {}
    identities: dict[int, tuple[Any, ...]] = {}
    spans: list[Span] = []
    warnings: list[list[str]] = []
    for s, w in zip(trace.spans, trace.span_warnings):
        cheap = (s.span_id, s.start_ns, s.duration_ns, s.name, s.parent_span_id)
        kept = by_cheap_key.get(cheap)
        if kept is None:
            by_cheap_key[cheap] = [len(spans)]
        else:
            ident = span_identity(s)
            for k in kept:
                if k not in identities:
                    identities[k] = span_identity(spans[k])
            if any(identities[k] == ident for k in kept):
                continue
            identities[len(spans)] = ident
            kept.append(len(spans))
        spans.append(s)
        warnings.append(w)  # the lists are never changed in place, so they can be shared
    dropped = len(trace.spans) - len(spans)
    if not dropped:
        return trace
    return AdjusterInput(spans, warnings, [*trace.warnings, f"{dropped} identical duplicate span(s) removed"])
