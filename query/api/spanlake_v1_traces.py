"""Trace routes of ``/api/spanlake/v1``: search summaries, one trace analysed, details, export."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from spanlake.query.api import params
from spanlake.query.api.deps import QueryServiceDep
from spanlake.query.jaeger_json import jaeger_envelope, trace_to_jaeger_ui
from spanlake.storage.api import TraceSummary

from . import spanlake_v1_models as m
from .spanlake_v1_http import json_response
from .spanlake_v1_params import MAX_LIMIT, SpanFilter, parse, span_filter
from .spanlake_v1_trace_json import hex_trace_id, search_in_trace, span_detail, trace_analysis, trace_view
from .spanlake_v1_traces_cache import LoadedTrace, TraceCache, load_trace, trace_cache

router = APIRouter()

TraceIdPath = Annotated[str, Path(description="Trace id, up to 32 hex digits.")]
RawParam = Annotated[bool, Query(description="Skip the adjusters (clock skew, de-duplication...).")]
TraceCacheDep = Annotated[TraceCache, Depends(trace_cache)]


def summary_item(s: TraceSummary) -> dict:
    return {
        "traceId": hex_trace_id(s.trace_id),
        "rootService": s.root_service_name,
        "rootOperation": s.root_span_name,
        "startNs": s.start_ns,
        "durationNs": s.end_ns - s.start_ns,
        "spanCount": s.span_count,
        "errorCount": s.error_span_count,
        "services": [{"name": x.name, "spanCount": x.span_count, "errorCount": x.error_span_count}
                     for x in s.services],
    }


@router.get("/traces", response_model=m.TraceSearchResult, summary="Search traces, returning summaries")
def search_traces(
    svc: QueryServiceDep,
    f: Annotated[SpanFilter, Depends(span_filter)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most traces to return.")] = 20,
) -> dict:
    """Traces with at least one span matching every condition, most recent first."""
    summaries = svc.find_trace_summaries(f.trace_query(limit))
    return {"startNs": f.start_ns, "endNs": f.end_ns, "limit": limit,
            "traces": [summary_item(s) for s in summaries]}


def get_loaded(svc: QueryServiceDep, cache: TraceCache, trace_id: str, raw: bool = False,
               fresh: bool = False) -> LoadedTrace:
    """The analysed trace; ``fresh`` reads the store again (see the cache's docstring)."""
    tid = parse(params.trace_id, trace_id, "traceId")
    loaded = cache.get((tid, raw), lambda: load_trace(svc, tid, raw), fresh=fresh)
    if loaded is None:
        raise HTTPException(404, f"trace {trace_id} not found")
    return loaded


def after_response(response: Response, cache: TraceCache) -> Response:
    """``response``, releasing the cache entries this request replaced once it has been sent."""
    response.background = BackgroundTask(cache.release)
    return response


@router.get("/traces/{trace_id}", response_model=m.TraceView, summary="One trace, analysed, in compact columns")
def get_trace_view(trace_id: TraceIdPath, request: Request, svc: QueryServiceDep, cache: TraceCacheDep,
                   raw: RawParam = False) -> Response:
    """Every span with its self time and critical-path time, plus the trace's breakdowns.

    Built for the waterfall: columns instead of objects, services and names interned, times as
    offsets from the trace start.
    """
    return after_response(json_response(trace_view(get_loaded(svc, cache, trace_id, raw, fresh=True)), request), cache)


@router.get("/traces/{trace_id}/analysis", response_model=m.TraceAnalysisResult,
            summary="Self time and critical path of every span; totals by service and operation")
def get_trace_analysis(trace_id: TraceIdPath, request: Request, svc: QueryServiceDep, cache: TraceCacheDep,
                       raw: RawParam = False) -> Response:
    return after_response(json_response(trace_analysis(get_loaded(svc, cache, trace_id, raw, fresh=True)), request), cache)


@router.get("/traces/{trace_id}/spans/{span_id}", response_model=m.SpanDetail, summary="Everything about one span")
def get_span(
    trace_id: TraceIdPath,
    span_id: Annotated[str, Path(description="Span id, 16 hex digits.")],
    request: Request,
    svc: QueryServiceDep,
    cache: TraceCacheDep,
    occurrence: Annotated[int, Query(ge=0, description="Which of several spans sharing the id (0 = first).")] = 0,
    raw: RawParam = False,
) -> Response:
    t = get_loaded(svc, cache, trace_id, raw)
    want = span_id.strip().lower().rjust(16, "0")
    matches = [i for i in t.rows if t.spans[i].span_id.hex().rjust(16, "0") == want]
    if occurrence >= len(matches):
        raise HTTPException(404, f"span {span_id} not found in trace {trace_id}")
    i = matches[occurrence]
    linked = list({link.trace_id for link in t.spans[i].links})
    stored = {r.trace_id for r in svc.get_traces(linked, raw=True)} if linked else set()
    return json_response(span_detail(t, i, stored), request)


@router.get("/traces/{trace_id}/search", response_model=m.InTraceSearchResult, summary="Find spans inside a trace")
def search_trace(
    trace_id: TraceIdPath,
    request: Request,
    svc: QueryServiceDep,
    cache: TraceCacheDep,
    q: Annotated[str, Query(description="Words that must all occur (case-insensitive) in a span's service, "
                                        "operation, id, status message, `key=value` attributes or events.")],
    raw: RawParam = False,
) -> Response:
    t = get_loaded(svc, cache, trace_id, raw)
    return json_response({"query": q, "spanIds": search_in_trace(t, q)}, request)


@router.get("/traces/{trace_id}/export", summary="Download a trace as OTLP JSON or Jaeger JSON",
            responses={200: {"content": {"application/json": {}}}})
def export_trace(
    trace_id: TraceIdPath,
    request: Request,
    svc: QueryServiceDep,
    cache: TraceCacheDep,
    format: Annotated[Literal["otlp", "jaeger"], Query(description="`otlp`: OTLP/JSON TracesData; `jaeger`: "
                                                                   "Jaeger's `{\"data\": [trace]}` file format.")] = "otlp",
    raw: RawParam = False,
) -> Response:
    t = get_loaded(svc, cache, trace_id, raw)
    if format == "otlp":
        from spanlake.otlp_encode import spans_to_otlp_json  # noqa: PLC0415 (the OTLP encoder is heavy)

        doc = spans_to_otlp_json(t.result.spans)
    else:
        doc = jaeger_envelope([trace_to_jaeger_ui(t.result.spans, t.result.span_warnings, t.result.warnings)])
    name = f"trace-{hex_trace_id(t.result.trace_id)}.{format}.json"
    body = json.dumps(doc, separators=(",", ":"))
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
