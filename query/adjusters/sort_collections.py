"""Sort attribute maps by key and events by time, as Jaeger's ``SortCollections`` does.

Resource, scope, span, event and link attributes end up in key order, so the tags of adjusted
traces come out sorted (the raw view keeps the order they were sent in) and identical spans
serialise identically. Spans that are already in order are passed through uncopied.
"""

from __future__ import annotations

from spanlake.model import Event, Resource, Scope

from .base import AdjusterInput, shallow_copy


def _in_order(attrs: dict[str, str]) -> bool:
    if len(attrs) < 2:
        return True
    keys = list(attrs)
    return keys == sorted(keys)


def _sorted(attrs: dict[str, str]) -> dict[str, str]:
    """A new dict in key order (the caller knows it is out of order, or wants a copy)."""
    return dict(sorted(attrs.items()))


def _events_in_order(events: list[Event]) -> bool:
    return all(a.time_ns <= b.time_ns for a, b in zip(events, events[1:])) and all(
        _in_order(e.attributes) for e in events
    )


def sort_collections(trace: AdjusterInput) -> AdjusterInput:
    resources: dict[int, Resource] = {}
    scopes: dict[int, Scope] = {}
    spans = []
    append = spans.append
    changed = False
    for s in trace.spans:
        # Spans sharing one resource (or scope) object keep sharing one sorted copy.
        r, sc = s.resource, s.scope
        res = resources.get(id(r))
        if res is None:
            res = r if _in_order(r.attributes) else Resource(_sorted(r.attributes), r.dropped_attributes_count, r.schema_url)
            resources[id(r)] = res
        scope = scopes.get(id(sc))
        if scope is None:
            scope = sc if _in_order(sc.attributes) else Scope(
                sc.name, sc.version, _sorted(sc.attributes), sc.dropped_attributes_count, sc.schema_url
            )
            scopes[id(sc)] = scope
        attrs_ok = _in_order(s.attributes)
        events_ok = not s.events or _events_in_order(s.events)
        links_ok = not s.links or all(_in_order(link.attributes) for link in s.links)
        if attrs_ok and events_ok and links_ok and res is r and scope is sc:
            append(s)
            continue
        changed = True
        # A copy as copy_span makes (own attribute maps, events and links), sorted on the way.
        new = shallow_copy(s)
        new.resource, new.scope = res, scope
        new.attributes = dict(s.attributes) if attrs_ok else _sorted(s.attributes)
        if s.events:
            events = [shallow_copy(e) for e in s.events]
            for e in events:
                e.attributes = _sorted(e.attributes)
            events.sort(key=_event_time)
            new.events = events
        else:
            new.events = []
        if s.links:
            links = [shallow_copy(link) for link in s.links]
            for link in links:
                link.attributes = _sorted(link.attributes)
            new.links = links
        else:
            new.links = []
        append(new)
    if not changed:
        return trace
    # Warnings are unchanged; their lists are never changed in place, so they can be shared.
    return AdjusterInput(spans, list(trace.span_warnings), list(trace.warnings))


def _event_time(e: Event) -> int:
    return e.time_ns
