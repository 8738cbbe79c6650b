"""Analysed traces, kept briefly so that one page view reads and analyses a trace once.

Opening a trace in the UI asks for the trace view, then for span details, in-trace searches and
downloads of the same trace; for a 100,000-span trace each fresh read plus analysis costs
seconds. Requests that show a trace (the view, the analysis, a comparison) read it afresh and
refresh the entry, so a reload shows spans that arrived since; follow-up requests (details,
search, export) reuse the entry for ``ttl_s`` seconds and so agree with the view on screen. The
cache holds at most ``max_spans`` spans in total, evicting the least recently used trace.
Concurrent requests for the same trace wait for one computation instead of repeating it.

Freeing an analysed trace is not free either (a quarter of a second for 100,000 spans), so the
entries a computation replaces or evicts are kept aside and released by :meth:`TraceCache.release`,
which the routes run after their response has been sent.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from fastapi import Request

from spanlake.model import Span, string_form
from spanlake.query.analysis.trace_stats import TraceAnalysis, analyze_trace
from spanlake.query.assemble import AssembledTrace, assemble_trace
from spanlake.query.service import QueryService, TraceResult, gc_paused


@dataclass
class LoadedTrace:
    """One trace with its tree and analysis; ``rows`` is the waterfall order of span indices."""

    result: TraceResult
    tree: AssembledTrace
    analysis: TraceAnalysis
    rows: list[int]
    row_of: list[int]
    _haystacks: list[str] | None = field(default=None, repr=False)

    @property
    def spans(self) -> list[Span]:
        return self.tree.spans

    def haystacks(self) -> list[str]:
        """Lower-cased searchable text of every span (built on first use)."""
        if self._haystacks is None:
            out = []
            for s in self.tree.spans:
                parts = [s.service_name, s.name, s.span_id.hex(), s.status_message]
                parts.extend(f"{k}={string_form(v)}" for k, v in s.attributes.items())
                parts.extend(f"{k}={string_form(v)}" for k, v in s.resource.attributes.items())
                for e in s.events:
                    parts.append(e.name)
                    parts.extend(f"{k}={string_form(v)}" for k, v in e.attributes.items())
                out.append("\n".join(parts).lower())
            self._haystacks = out
        return self._haystacks


def load_trace(svc: QueryService, trace_id: bytes, raw: bool = False) -> LoadedTrace | None:
    with gc_paused():  # read, adjusted, assembled and analysed without the cyclic collector
        result = svc.get_trace(trace_id, raw=raw)
        if result is None:
            return None
        tree = assemble_trace(result.spans, result.span_warnings, result.warnings)
        analysis = analyze_trace(tree)
        rows = tree.order
        row_of = [0] * len(rows)
        for r, i in enumerate(rows):
            row_of[i] = r
        return LoadedTrace(result, tree, analysis, rows, row_of)


#: Replaced or evicted entries kept for :meth:`TraceCache.release` at most.
MAX_RELEASED = 4


class TraceCache:
    def __init__(self, ttl_s: float = 300.0, max_spans: int = 400_000) -> None:
        self.ttl_s = ttl_s
        self.max_spans = max_spans
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[bytes, bool], tuple[float, LoadedTrace]] = OrderedDict()
        self._inflight: dict[tuple[bytes, bool], threading.Event] = {}
        self._released: list[LoadedTrace] = []  # replaced or evicted, not yet let go

    def get(self, key: tuple[bytes, bool], compute: Callable[[], LoadedTrace | None],
            fresh: bool = False) -> LoadedTrace | None:
        """The cached trace, or ``compute()``'s (always the latter when ``fresh``)."""
        while True:
            with self._lock:
                hit = self._entries.get(key)
                if not fresh and hit is not None and time.monotonic() - hit[0] < self.ttl_s:
                    self._entries.move_to_end(key)
                    return hit[1]
                waiting = self._inflight.get(key)
                if waiting is None:
                    done = self._inflight[key] = threading.Event()
                    break
            waiting.wait()
            fresh = False  # the computation just waited for is fresh enough
        try:
            value = compute()
            if value is not None:
                self._put(key, value)
            return value
        finally:
            with self._lock:
                del self._inflight[key]
            done.set()

    def _put(self, key: tuple[bytes, bool], value: LoadedTrace) -> None:
        with self._lock:
            if len(self._released) > MAX_RELEASED:
                self._released.clear()  # nobody released them: let them go here
            previous = self._entries.get(key)
            if previous is not None:
                self._released.append(previous[1])
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            total = sum(len(v.spans) for _, v in self._entries.values())
            while total > self.max_spans and len(self._entries) > 1:
                _, (_, old) = self._entries.popitem(last=False)
                total -= len(old.spans)
                self._released.append(old)

    def release(self) -> None:
        """Let go of the entries replaced or evicted so far (run after a response is sent)."""
        with self._lock:
            released, self._released = self._released, []
        del released  # freed here, outside the lock


def trace_cache(request: Request) -> TraceCache:
    """The app's cache (one per app, so tests with different stores never share entries)."""
    state = request.app.state
    cache = getattr(state, "spanlake_v1_trace_cache", None)
    if cache is None:
        with _create_lock:
            cache = getattr(state, "spanlake_v1_trace_cache", None)
            if cache is None:
                cache = state.spanlake_v1_trace_cache = TraceCache()
    return cache


_create_lock = threading.Lock()
