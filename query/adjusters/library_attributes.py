"""Move OpenTelemetry SDK attributes from spans to their resource (Jaeger's
``MoveLibraryAttributes``), so the UI shows them under the process.

Keys starting with ``telemetry.sdk.`` or ``telemetry.distro.`` move. Spans that shared a resource
share the enriched one. If the resource already holds the key with another value (or either value
is not a string) the attribute stays on the span and the span gets a warning.
"""

from __future__ import annotations

from itertools import chain

from spanlake.model import Resource

from .base import AdjusterInput, copy_span, shallow_copy

LIBRARY_PREFIXES = ("telemetry.sdk.", "telemetry.distro.")


def _is_library_key(key: str) -> bool:
    return key.startswith(LIBRARY_PREFIXES)


def move_library_attributes(trace: AdjusterInput) -> AdjusterInput:
    # The distinct keys of the trace are few, and collecting them is one pass in C.
    if not any(_is_library_key(k) for k in set(chain.from_iterable(s.attributes for s in trace.spans))):
        return trace
    enriched: dict[int, Resource] = {}
    out = list(trace.spans)
    warnings = list(trace.span_warnings)  # only the lists of warned spans are replaced
    for i, s in enumerate(trace.spans):
        keys = [k for k in s.attributes if _is_library_key(k)]
        res = enriched.get(id(s.resource))
        if res is None:
            src = s.resource
            res = Resource(dict(src.attributes), src.dropped_attributes_count, src.schema_url)
            enriched[id(s.resource)] = res
        if not keys:
            s = shallow_copy(s)
            s.resource = res
            out[i] = s
            continue
        s = copy_span(s)
        for k in keys:
            v = s.attributes[k]
            existing = res.attributes.get(k)
            if existing is not None and not (existing == v and v[:1] == "s"):
                warnings[i] = [*warnings[i], f"conflicting values between Span and Resource for attribute {k}"]
                continue
            res.attributes[k] = v
            del s.attributes[k]
        s.resource = res
        out[i] = s
    return AdjusterInput(out, warnings, list(trace.warnings))
