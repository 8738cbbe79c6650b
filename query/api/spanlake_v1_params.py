"""Query parameters of ``/api/spanlake/v1``: time ranges, span filters, and span matching.

A :class:`SpanFilter` is what the search, latency and attribute routes share: a service, an
operation, a span kind, ``key=value`` attribute conditions, a time range and duration bounds.
It becomes a :class:`~spanlake.storage.api.TraceQuery` for the store, and
:func:`span_matches` re-applies the same conditions to single spans, because the store finds
*traces* with a matching span while latency figures need the matching spans themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import HTTPException, Query

from spanlake.model import Span
from spanlake.query.api import params
from spanlake.storage.api import TraceQuery
from spanlake.storage.span_match import tag_matches

DEFAULT_LOOKBACK = "1h"
MAX_LIMIT = 1500

ServiceParam = Annotated[str | None, Query(description="Service name; all services when absent.")]
OperationParam = Annotated[str | None, Query(description="Operation (span name).")]
SpanKindParam = Annotated[
    str | None, Query(description="Span kind: server, client, producer, consumer or internal.")
]
AttrParam = Annotated[
    list[str] | None,
    Query(description="Attribute condition `key=value` (string form), repeatable. Special keys as in "
                      "Jaeger search: error, span.kind, span.status, scope.name, resource.<key>."),
]
StartParam = Annotated[int | None, Query(description="Range start, Unix ns (inclusive); default end - lookback.")]
EndParam = Annotated[int | None, Query(description="Range end, Unix ns (exclusive); default now.")]
LookbackParam = Annotated[
    str | None, Query(description="Range length when `start` is absent, e.g. `15m`, `1h`, `2d`. Default 1h.")
]
MinDurationParam = Annotated[str | None, Query(description="Minimum span duration, e.g. `100ms`.")]
MaxDurationParam = Annotated[str | None, Query(description="Maximum span duration, e.g. `2s`.")]


def bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


def parse(fn, *args):
    """Run a :mod:`params` parser, turning its error into HTTP 400."""
    try:
        return fn(*args)
    except params.ParamError as e:
        raise bad_request(str(e)) from None


def duration_ns(text: str | None, name: str) -> int | None:
    if text is None or text.strip() == "":
        return None
    t = text.strip()
    if t.isdigit():  # a bare number is nanoseconds
        return int(t)
    return parse(params.go_duration, t, name)


def time_range(start: int | None, end: int | None, lookback: str | None) -> tuple[int, int]:
    """``[start, end)`` in Unix ns from explicit bounds or a lookback ending now."""
    end_ns = end if end is not None else time.time_ns()
    if start is None:
        span = duration_ns(lookback or DEFAULT_LOOKBACK, "lookback")
        if span is None or span <= 0:
            raise bad_request("unable to parse param 'lookback': must be positive")
        start = end_ns - span
    if end_ns <= start:
        raise bad_request("unable to parse param 'end': must be after start")
    return start, end_ns


def attributes(pairs: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise bad_request(f"unable to parse param 'attr': expected key=value, got {pair!r}")
        out.append((key.strip(), value))
    return tuple(out)


@dataclass(frozen=True)
class SpanFilter:
    service: str | None
    operation: str | None
    span_kind: int | None
    attributes: tuple[tuple[str, str], ...]
    start_ns: int
    end_ns: int
    min_duration_ns: int | None
    max_duration_ns: int | None

    def trace_query(self, limit: int) -> TraceQuery:
        return TraceQuery(
            service_name=self.service,
            operation_name=self.operation,
            span_kind=self.span_kind,
            attributes=self.attributes,
            start_min_ns=self.start_ns,
            start_max_ns=self.end_ns,
            duration_min_ns=self.min_duration_ns,
            duration_max_ns=self.max_duration_ns,
            limit=limit,
        )


def span_filter(
    service: ServiceParam = None,
    operation: OperationParam = None,
    spanKind: SpanKindParam = None,
    attr: AttrParam = None,
    start: StartParam = None,
    end: EndParam = None,
    lookback: LookbackParam = None,
    minDuration: MinDurationParam = None,
    maxDuration: MaxDurationParam = None,
) -> SpanFilter:
    """FastAPI dependency: the shared filter parameters, validated."""
    start_ns, end_ns = time_range(start, end, lookback)
    dmin, dmax = duration_ns(minDuration, "minDuration"), duration_ns(maxDuration, "maxDuration")
    if dmin is not None and dmax is not None and dmax < dmin:
        raise bad_request("unable to parse param 'maxDuration': must not be less than minDuration")
    return SpanFilter(
        service=service or None,
        operation=operation or None,
        span_kind=parse(params.span_kind, spanKind),
        attributes=attributes(attr),
        start_ns=start_ns,
        end_ns=end_ns,
        min_duration_ns=dmin,
        max_duration_ns=dmax,
    )


# --- matching single spans (the store's TraceQuery semantics) ----------------------------------


def span_matches(s: Span, f: SpanFilter) -> bool:
    """Whether one span satisfies every condition of ``f`` (as the store applies them)."""
    if not f.start_ns <= s.start_ns < f.end_ns:
        return False
    if f.service is not None and s.service_name != f.service:
        return False
    if f.operation is not None and s.name != f.operation:
        return False
    if f.span_kind is not None and s.kind != f.span_kind:
        return False
    if f.min_duration_ns is not None and s.duration_ns < f.min_duration_ns:
        return False
    if f.max_duration_ns is not None and s.duration_ns > f.max_duration_ns:
        return False
    return all(tag_matches(s, key, text) for key, text in f.attributes)


