"""Drop span links whose trace id is empty or all zeros (Jaeger's ``RemoveEmptySpanLinks``)."""

from __future__ import annotations

from .base import AdjusterInput, copy_span

INVALID_LINK = "Invalid span link removed"


def remove_empty_span_links(trace: AdjusterInput) -> AdjusterInput:
    out = list(trace.spans)
    warnings = None
    for i, s in enumerate(trace.spans):
        if not s.links or all(link.trace_id and any(link.trace_id) for link in s.links):
            continue
        if warnings is None:
            warnings = list(trace.span_warnings)  # only the lists of warned spans are replaced
        s = copy_span(s)
        kept = []
        for link in s.links:
            if link.trace_id and any(link.trace_id):
                kept.append(link)
            else:
                warnings[i] = [*warnings[i], INVALID_LINK]
        s.links = kept
        out[i] = s
    if warnings is None:
        return trace
    return AdjusterInput(out, warnings, list(trace.warnings))
