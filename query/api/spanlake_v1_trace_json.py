"""JSON documents about one analysed trace: the compact view, per-span analysis, span details.

The view is columnar (one array per field) with services and names interned, and span times are
offsets from the trace start, so a 100,000-span trace stays a few megabytes and JavaScript keeps
nanosecond precision. Rows are in waterfall order: depth-first, children by start time.
"""

from __future__ import annotations

from typing import Any

from spanlake.model import SPAN_KIND_NAMES, STATUS_NAMES, Span, string_form, value_type
from spanlake.query.analysis.trace_stats import GroupStats

from .spanlake_v1_traces_cache import LoadedTrace


def hex_span_id(span_id: bytes) -> str:
    return span_id.hex().rjust(16, "0") if span_id else ""


def hex_trace_id(trace_id: bytes) -> str:
    return trace_id.hex().rjust(32, "0")


def group_json(g: GroupStats) -> dict[str, Any]:
    return {
        "service": g.service,
        "operation": g.operation,
        "count": g.count,
        "totalNs": g.total_ns,
        "selfNs": g.self_ns,
        "criticalPathNs": g.critical_path_ns,
        "errors": g.errors,
        "shareOfTrace": g.share_of_trace,
        "criticalPathShare": g.critical_path_share,
    }


def _header(t: LoadedTrace) -> dict[str, Any]:
    a = t.analysis
    return {
        "traceId": hex_trace_id(t.result.trace_id),
        "startNs": a.start_ns,
        "durationNs": a.duration_ns,
        "spanCount": a.span_count,
        "errorCount": a.error_count,
        "depth": a.depth,
        "rootService": a.root_service,
        "rootOperation": a.root_operation,
    }


def trace_view(t: LoadedTrace) -> dict[str, Any]:
    """The document of ``GET /traces/{id}`` (model: ``TraceView``).

    Built a column at a time (list comprehensions over the waterfall order), which for a
    100,000-span trace is several times faster than appending field by field per span.
    """
    spans, rows, row_of = t.spans, t.rows, t.row_of
    t0 = t.analysis.start_ns
    ordered = [spans[i] for i in rows]
    span_services = t.analysis.span_services or [s.service_name for s in spans]
    services: dict[str, int] = {}
    service_col = [services.setdefault(span_services[i], len(services)) for i in rows]

    # Span and event names share one table, numbered in order of first use (span, then its events).
    names: dict[str, int] = {}
    name_col = []
    ev: dict[str, list] = {"span": [], "time": [], "name": [], "error": []}
    for r, s in enumerate(ordered):
        name_col.append(names.setdefault(s.name, len(names)))
        if s.events:
            for e in s.events:
                ev["span"].append(r)
                ev["time"].append(e.time_ns - t0)
                ev["name"].append(names.setdefault(e.name, len(names)))
                ev["error"].append(1 if e.name == "exception" else 0)

    parent_idx = t.tree.parent
    cp_time = t.analysis.critical_path.time_by_span.get
    own = t.analysis.self_ns
    starts = t.tree.starts
    cols: dict[str, list] = {
        "spanId": [s.span_id.hex().rjust(16, "0") if s.span_id else "" for s in ordered],
        "parent": [row_of[p] if p >= 0 else -1 for p in (parent_idx[i] for i in rows)],
        "service": service_col,
        "name": name_col,
        "kind": [s.kind for s in ordered],
        "status": [s.status_code for s in ordered],
        "start": [starts[i] - t0 for i in rows],
        "duration": [s.duration_ns for s in ordered],
        "self": [own[i] for i in rows],
        "criticalPath": [cp_time(i, 0) for i in rows],
    }
    sections = t.analysis.critical_path.sections
    doc = _header(t)
    doc.update(
        services=list(services),
        names=list(names),
        spans=cols,
        events=ev,
        criticalPath={
            "span": [row_of[sec.span_index] for sec in sections],
            "start": [sec.start_ns - t0 for sec in sections],
            "end": [sec.end_ns - t0 for sec in sections],
        },
        spanWarnings={str(row_of[i]): w for i, w in t.tree.span_warnings.items() if w},
        warnings=list(t.tree.warnings),
        byService=[group_json(g) for g in t.analysis.by_service],
        byOperation=[group_json(g) for g in t.analysis.by_operation],
    )
    return doc


def trace_analysis(t: LoadedTrace) -> dict[str, Any]:
    """The document of ``GET /traces/{id}/analysis`` (model: ``TraceAnalysisResult``)."""
    a = t.analysis
    cp = a.critical_path
    spans, parent = t.spans, t.tree.parent
    items = []
    for i in t.rows:
        s = spans[i]
        cp_ns = cp.time_by_span.get(i, 0)
        items.append({
            "spanId": hex_span_id(s.span_id),
            "parentSpanId": hex_span_id(spans[parent[i]].span_id) if parent[i] >= 0 else "",
            "service": s.service_name,
            "operation": s.name,
            "startNs": s.start_ns,
            "durationNs": s.duration_ns,
            "selfTimeNs": a.self_ns[i],
            "onCriticalPath": i in cp.time_by_span,
            "criticalPathNs": cp_ns,
            "criticalPathShare": cp.share_by_span.get(i, 0.0),
        })
    doc = _header(t)
    doc.update(
        services=list(a.services),
        spans=items,
        byService=[group_json(g) for g in a.by_service],
        byOperation=[group_json(g) for g in a.by_operation],
    )
    return doc


def attributes_json(attrs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "type": value_type(v), "value": string_form(v)} for k, v in attrs.items()]


def span_detail(t: LoadedTrace, i: int, stored_traces: set[bytes]) -> dict[str, Any]:
    """The document of ``GET /traces/{id}/spans/{spanId}`` (model: ``SpanDetail``)."""
    s: Span = t.spans[i]
    return {
        "traceId": hex_trace_id(s.trace_id),
        "spanId": hex_span_id(s.span_id),
        "parentSpanId": hex_span_id(s.parent_span_id) if s.parent_span_id and any(s.parent_span_id) else "",
        "service": s.service_name,
        "operation": s.name,
        "kind": SPAN_KIND_NAMES.get(s.kind, str(s.kind)),
        "statusCode": STATUS_NAMES.get(s.status_code, str(s.status_code)),
        "statusMessage": s.status_message,
        "startNs": s.start_ns,
        "startOffsetNs": s.start_ns - t.analysis.start_ns,
        "durationNs": s.duration_ns,
        "selfTimeNs": t.analysis.self_ns[i],
        "criticalPathNs": t.analysis.critical_path.time_by_span.get(i, 0),
        "depth": t.tree.depth[i],
        "childCount": len(t.tree.children[i]),
        "traceState": s.trace_state,
        "flags": s.flags,
        "attributes": attributes_json(s.attributes),
        "droppedAttributesCount": s.dropped_attributes_count,
        "resource": {
            "attributes": attributes_json(s.resource.attributes),
            "droppedAttributesCount": s.resource.dropped_attributes_count,
            "schemaUrl": s.resource.schema_url,
        },
        "scope": {"name": s.scope.name, "version": s.scope.version,
                  "attributes": attributes_json(s.scope.attributes)},
        "events": [
            {"name": e.name, "timeNs": e.time_ns, "offsetNs": e.time_ns - s.start_ns,
             "attributes": attributes_json(e.attributes)}
            for e in s.events
        ],
        "droppedEventsCount": s.dropped_events_count,
        "links": [
            {"traceId": hex_trace_id(link.trace_id), "spanId": hex_span_id(link.span_id),
             "traceState": link.trace_state, "attributes": attributes_json(link.attributes),
             "stored": link.trace_id in stored_traces}
            for link in s.links
        ],
        "droppedLinksCount": s.dropped_links_count,
        "warnings": list(t.tree.span_warnings.get(i, [])),
    }


def search_in_trace(t: LoadedTrace, query: str) -> list[str]:
    """Span ids (waterfall order) whose text contains every whitespace-separated term."""
    terms = [w for w in query.lower().split() if w]
    if not terms:
        return []
    hay = t.haystacks()
    out = []
    for i in t.rows:
        text = hay[i]
        if all(term in text for term in terms):
            out.append(hex_span_id(t.spans[i].span_id))
    return out
