"""Give server spans that share their span id with a client span a new id (Zipkin-style RPCs).

Zipkin clients reuse one span id for both sides of a call. Following Jaeger's
``DeduplicateClientServerSpanIDs``: every server-kind span whose id is also used by a client-kind
span gets the smallest span id not used anywhere in the trace, becomes a child of the shared id
(the client span), and spans that named the shared id as their parent now point at the server
span.
"""

from __future__ import annotations

from spanlake.model import SPAN_KIND_NUMBERS

from .base import AdjusterInput, copy_span

_SERVER = SPAN_KIND_NUMBERS["server"]
_CLIENT = SPAN_KIND_NUMBERS["client"]
_MAX_ID = (1 << 64) - 1
TOO_MANY_SPANS = "cannot assign unique span ID, too many spans in the trace"


def deduplicate_client_server_span_ids(trace: AdjusterInput) -> AdjusterInput:
    client_ids = {s.span_id for s in trace.spans if s.kind == _CLIENT}
    if not client_ids or not any(s.kind == _SERVER and s.span_id in client_ids for s in trace.spans):
        return trace  # no server span shares its id with a client span: nothing to rename

    spans = list(trace.spans)
    warnings = list(trace.span_warnings)  # only the lists of warned spans are replaced
    used = {int.from_bytes(s.span_id, "big") for s in spans if len(s.span_id) == 8}
    next_id = 0
    old_to_new: dict[bytes, bytes] = {}
    for i, s in enumerate(spans):
        if s.kind != _SERVER or s.span_id not in client_ids:
            continue
        next_id += 1
        while next_id in used and next_id <= _MAX_ID:
            next_id += 1
        if next_id > _MAX_ID:
            warnings[i] = [*warnings[i], TOO_MANY_SPANS]
            continue
        used.add(next_id)
        new_id = next_id.to_bytes(8, "big")
        old_to_new[s.span_id] = new_id
        s = copy_span(s)
        s.parent_span_id = s.span_id  # the previously shared id is the new parent
        s.span_id = new_id
        spans[i] = s

    if old_to_new:
        for i, s in enumerate(spans):
            new_parent = old_to_new.get(s.parent_span_id)
            if new_parent is not None and s.span_id != new_parent:
                s = copy_span(s)
                s.parent_span_id = new_parent
                spans[i] = s
    return AdjusterInput(spans, warnings, list(trace.warnings))
