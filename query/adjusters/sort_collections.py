"""Sort attribute maps by key and events by time, as Jaeger's ``SortCollections`` does.

Resource, scope, span, event and link attributes end up in key order, so the tags of adjusted
traces come out sorted (the raw view keeps the order they were sent in) and identical spans
serialise identically. Spans that are already in order are passed through uncopied.
"""

from __future__ import annotations

from spanlake.model import Resource, Scope, Span

from .base import AdjusterInput, copy_span


def _in_order(attrs: dict[str, str]) -> bool:
    if len(attrs) < 2:
        return True
    keys = list(attrs)
    return keys == sorted(keys)


def _sorted(attrs: dict[str, str]) -> dict[str, str]:
    return attrs if _in_order(attrs) else dict(sorted(attrs.items()))


def _span_in_order(s: Span) -> bool:
    return (
        _in_order(s.attributes)
        and (not s.events or (
            all(a.time_ns <= b.time_ns for a, b in zip(s.events, s.events[1:]))
            and all(_in_order(e.attributes) for e in s.events)
        ))
        and (not s.links or all(_in_order(link.attributes) for link in s.links))
    )


def sort_collections(trace: AdjusterInput) -> AdjusterInput:
    resources: dict[int, Resource] = {}
    scopes: dict[int, Scope] = {}
    spans = []
    changed = False
    for s in trace.spans:
        # Spans sharing one resource (or scope) object keep sharing one sorted copy.
        res = resources.get(id(s.resource))
        if res is None:
            r = s.resource
            res = r if _in_order(r.attributes) else Resource(_sorted(r.attributes), r.dropped_attributes_count, r.schema_url)
            resources[id(s.resource)] = res
        scope = scopes.get(id(s.scope))
        if scope is None:
            sc = s.scope
            scope = sc if _in_order(sc.attributes) else Scope(
                sc.name, sc.version, _sorted(sc.attributes), sc.dropped_attributes_count, sc.schema_url
            )
            scopes[id(s.scope)] = scope
        if res is s.resource and scope is s.scope and _span_in_order(s):
            spans.append(s)
            continue
        changed = True
        s = copy_span(s)
        s.resource, s.scope = res, scope
        s.attributes = _sorted(s.attributes)
        s.events.sort(key=lambda e: e.time_ns)
        for e in s.events:
            e.attributes = _sorted(e.attributes)
        for link in s.links:
            link.attributes = _sorted(link.attributes)
        spans.append(s)
    if not changed:
        return trace
    return AdjusterInput(spans, [list(w) for w in trace.span_warnings], list(trace.warnings))
