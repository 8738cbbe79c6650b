"""The adjusters the query service applies to every trace unless the caller asks for raw data.

The order is Jaeger's (``adjuster/standard.go``): ids first, so that later steps see a tree;
sorting before de-duplication; clock skew once the duplicates are gone; cosmetic fixes last.
Jaeger's ``CorrectMaxSize`` (truncation of huge traces) is not here: trace size limits belong to
the reader.
"""

from __future__ import annotations

from typing import Iterable

from spanlake.model import Span

from .base import Adjuster, AdjusterInput, apply_adjusters
from .clock_skew import ClockSkewAdjuster
from .dedupe_spans import dedupe_spans
from .ip_attributes import normalize_ip_attributes
from .library_attributes import move_library_attributes
from .sort_collections import sort_collections
from .span_id_uniquifier import deduplicate_client_server_span_ids
from .span_links import remove_empty_span_links


def standard_adjusters(max_clock_skew_adjust_ns: int = 0) -> list[Adjuster]:
    """Jaeger's list; ``max_clock_skew_adjust_ns=0`` disables clock-skew shifting (Jaeger's default)."""
    return [
        deduplicate_client_server_span_ids,
        sort_collections,
        dedupe_spans,  # relies on sort_collections having run
        ClockSkewAdjuster(max_clock_skew_adjust_ns),
        normalize_ip_attributes,
        move_library_attributes,
        remove_empty_span_links,
    ]


def adjust_trace(
    spans: Iterable[Span], *, raw: bool = False, max_clock_skew_adjust_ns: int = 0
) -> AdjusterInput:
    """Apply the standard adjusters to one trace (none at all when ``raw``)."""
    trace = AdjusterInput.of(spans)
    if raw:
        return trace
    return apply_adjusters(trace, standard_adjusters(max_clock_skew_adjust_ns))
