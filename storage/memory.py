"""MemoryStore: a plain in-memory reference implementation of the Store contracts.

It favours obviousness over speed: searches loop over every span and compare string forms
exactly as :class:`~spanlake.storage.api.TraceQuery` describes them. It backs fast query tests
and passes the same storage suite as DuckLake; ``serve`` never falls back to it.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from spanlake.model import SPAN_KIND_NUMBERS, Span, SpanBatch, spans_from_arrow, string_form
from spanlake.storage.api import (
    Capabilities,
    DependencyLink,
    FoundTrace,
    GetTrace,
    Operation,
    ServiceSpanCount,
    StoreClosed,
    StoreStats,
    TraceQuery,
    TraceSummary,
)

_STATUS_NUMBERS = {"unset": 0, "ok": 1, "error": 2}


@dataclass
class _Stored:
    span: Span
    service: str  # the span row's service_name column, which searches use


class MemoryStore:
    """Everything in dicts behind one lock; ``write_spans`` returns a resolved future."""

    capabilities = Capabilities(trace_summaries=True, dependencies=True, retention=True, multi_process=False)

    def __init__(self, options: Any = None) -> None:
        self._lock = threading.Lock()
        self._traces: dict[bytes, list[_Stored]] = {}
        self._archived: set[bytes] = set()
        self._closed = False
        self._commits = 0

    # -- writing ----------------------------------------------------------------------------

    def write_spans(self, batch: SpanBatch) -> "Future[None]":
        spans = spans_from_arrow(batch.spans, batch.resources, batch.scopes)
        services = batch.spans.column("service_name").to_pylist()
        with self._lock:
            self._check_open()
            for span, service in zip(spans, services):
                self._traces.setdefault(span.trace_id, []).append(_Stored(span, service or ""))
            self._commits += 1
        fut: Future[None] = Future()
        fut.set_result(None)
        return fut

    def flush(self) -> None:
        """Nothing is ever queued."""

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def _all(self) -> list[_Stored]:
        with self._lock:
            self._check_open()
            return [s for spans in self._traces.values() for s in spans]

    # -- traces by id -----------------------------------------------------------------------

    def get_trace(self, query: GetTrace) -> list[Span]:
        return self.get_traces([query.trace_id]).get(query.trace_id, [])

    def get_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[Span]]:
        with self._lock:
            self._check_open()
            found = {t: [s.span for s in self._traces[t]] for t in trace_ids if t in self._traces}
        return {t: sorted(copy.deepcopy(spans), key=lambda s: s.start_ns) for t, spans in found.items()}

    # -- search -----------------------------------------------------------------------------

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        return [FoundTrace(s.trace_id, s.start_ns, s.end_ns) for s in self._find(query)]

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        return self._find(query)

    def _find(self, query: TraceQuery) -> list[TraceSummary]:
        with self._lock:
            self._check_open()
            hits = [
                _summarise(tid, spans)
                for tid, spans in self._traces.items()
                if any(_matches(s, query) for s in spans)
            ]
        hits.sort(key=lambda s: s.trace_id)
        hits.sort(key=lambda s: s.start_ns, reverse=True)
        return hits[: query.limit] if query.limit > 0 else hits

    def get_services(self) -> list[str]:
        return sorted({s.service for s in self._all()})

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        ops = {
            (s.span.name, s.span.kind)
            for s in self._all()
            if s.service == service and (span_kind is None or s.span.kind == span_kind)
        }
        return [Operation(name, kind) for name, kind in sorted(ops)]

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        with self._lock:
            self._check_open()
            counts: dict[tuple[str, str], list[int]] = {}
            for spans in self._traces.values():
                by_id: dict[bytes, list[_Stored]] = {}
                for s in spans:
                    by_id.setdefault(s.span.span_id, []).append(s)
                for child in spans:
                    c = child.span
                    if not c.parent_span_id or not start_ns <= c.start_ns < end_ns:
                        continue
                    for parent in by_id.get(c.parent_span_id, []):
                        if parent.service != child.service:
                            acc = counts.setdefault((parent.service, child.service), [0, 0])
                            acc[0] += 1
                            acc[1] += c.status_code == 2
        return [DependencyLink(p, c, n, e) for (p, c), (n, e) in sorted(counts.items())]

    # -- archive and retention --------------------------------------------------------------

    def archive_trace(self, trace_id: bytes) -> bool:
        with self._lock:
            self._check_open()
            if trace_id not in self._traces:
                return False
            self._archived.add(trace_id)
            return True

    def apply_retention(self, cutoff_ns: int) -> int:
        deleted = 0
        with self._lock:
            self._check_open()
            for tid in list(self._traces):
                if tid in self._archived:
                    continue
                kept = [s for s in self._traces[tid] if s.span.start_ns >= cutoff_ns]
                deleted += len(self._traces[tid]) - len(kept)
                if kept:
                    self._traces[tid] = kept
                else:
                    del self._traces[tid]
        return deleted

    # -- stats and close --------------------------------------------------------------------

    def stats(self) -> StoreStats:
        return StoreStats(queue_depth_spans=0, size_on_disk_bytes=0, commits=self._commits)

    def close(self) -> None:
        with self._lock:
            self._closed = True


def _summarise(trace_id: bytes, spans: list[_Stored]) -> TraceSummary:
    roots = [s for s in spans if not s.span.parent_span_id]
    root = min(roots, key=lambda s: s.span.start_ns) if roots else None
    per_service: dict[str, list[int]] = {}
    for s in spans:
        acc = per_service.setdefault(s.service, [0, 0])
        acc[0] += 1
        acc[1] += s.span.status_code == 2
    return TraceSummary(
        trace_id=trace_id,
        root_service_name=root.service if root else "",
        root_span_name=root.span.name if root else "",
        start_ns=min(s.span.start_ns for s in spans),
        end_ns=max(s.span.end_ns for s in spans),
        span_count=len(spans),
        error_span_count=sum(s.span.status_code == 2 for s in spans),
        services=tuple(ServiceSpanCount(n, c, e) for n, (c, e) in sorted(per_service.items())),
    )


def _matches(stored: _Stored, q: TraceQuery) -> bool:
    s = stored.span
    if q.start_min_ns is not None and s.start_ns < q.start_min_ns:
        return False
    if q.start_max_ns is not None and s.start_ns >= q.start_max_ns:
        return False
    if q.service_name is not None and stored.service != q.service_name:
        return False
    if q.operation_name is not None and s.name != q.operation_name:
        return False
    if q.span_kind is not None and s.kind != q.span_kind:
        return False
    if q.duration_min_ns is not None and s.duration_ns < q.duration_min_ns:
        return False
    if q.duration_max_ns is not None and s.duration_ns > q.duration_max_ns:
        return False
    return all(_tag_matches(s, key, text) for key, text in q.attributes)


def _has(attrs: dict[str, str], key: str, text: str) -> bool:
    enc = attrs.get(key)
    return enc is not None and string_form(enc) == text


def _tag_matches(s: Span, key: str, text: str) -> bool:
    if key == "error" and text in ("true", "false"):
        return (s.status_code == 2) == (text == "true")
    if key == "span.kind":
        return SPAN_KIND_NUMBERS.get(text) == s.kind
    if key == "span.status":
        return _STATUS_NUMBERS.get(text) == s.status_code
    if key == "scope.name":
        return s.scope.name == text
    if key == "scope.version":
        return s.scope.version == text
    if key.startswith("resource.") and len(key) > len("resource."):
        return _has(s.resource.attributes, key[len("resource.") :], text)
    return (
        _has(s.attributes, key, text)
        or any(_has(e.attributes, key, text) for e in s.events)
        or any(_has(l.attributes, key, text) for l in s.links)
        or _has(s.scope.attributes, key, text)
        or _has(s.resource.attributes, key, text)
    )
