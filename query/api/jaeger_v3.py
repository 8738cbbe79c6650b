"""Jaeger's api_v3 HTTP gateway at ``/api/v3``: OTLP/JSON traces, services, operations, summaries.

Matches Jaeger's gateway: ``{"result": TracesData}`` for traces, ``{"services": [...]}``,
``{"operations": [{"name", "spanKind"}]}``, ``{"summaries": [...]}``; errors as
``{"error": {"httpCode", "message"}}``; a search without a match is a 404. Search parameters
are accepted in camelCase (``query.serviceName``) and in the deprecated snake_case spelling.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spanlake.model import SPAN_KIND_NAMES
from spanlake.otlp_encode import spans_to_otlp_json
from spanlake.query.api import params
from spanlake.query.api.deps import QueryServiceDep
from spanlake.storage.api import TraceQuery, TraceSummary

router = APIRouter(prefix="/api/v3", tags=["jaeger api_v3"])


class V3APIError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def error_response(exc: V3APIError) -> Response:
    return _json({"error": {"httpCode": exc.code, "message": exc.message}}, exc.code)


def _json(doc: Any, status: int = 200) -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), status, media_type="application/json")


def _param(request: Request, camel: str, *aliases: str) -> str | None:
    for name in (camel, *aliases):
        v = request.query_params.get(name)
        if v not in (None, ""):
            return v
    return None


def _parse(fn, *args):
    try:
        return fn(*args)
    except params.ParamError as e:
        raise V3APIError(400, str(e)) from None


def _merge_traces(results) -> dict:
    resource_spans: list = []
    for r in results:
        resource_spans.extend(spans_to_otlp_json(r.spans).get("resourceSpans", []))
    return {"result": {"resourceSpans": resource_spans}}


@router.get("/traces/{trace_id}")
def get_trace(trace_id: str, request: Request, svc: QueryServiceDep) -> Response:
    tid = _parse(params.trace_id, trace_id, "trace_id")
    start = _parse(params.rfc3339_ns, s, "startTime") if (s := _param(request, "startTime", "start_time")) else None
    end = _parse(params.rfc3339_ns, e, "endTime") if (e := _param(request, "endTime", "end_time")) else None
    raw = params.boolean(_param(request, "rawTraces", "raw_traces"))
    result = svc.get_trace(tid, start, end, raw=raw)
    if result is None:
        raise V3APIError(404, "trace not found")
    return _json(_merge_traces([result]))


def v3_query(request: Request) -> TraceQuery:
    p = lambda camel, snake: _param(request, "query." + camel, "query." + snake)  # noqa: E731
    start_min, start_max = p("startTimeMin", "start_time_min"), p("startTimeMax", "start_time_max")
    if start_min is None:
        raise V3APIError(400, "start time min is required")
    if start_max is None:
        raise V3APIError(400, "start time max is required")
    smin = _parse(params.rfc3339_ns, start_min, "query.startTimeMin")
    smax = _parse(params.rfc3339_ns, start_max, "query.startTimeMax")
    if smax <= smin:
        raise V3APIError(400, "unable to parse param 'query.startTimeMax': must be after query.startTimeMin")
    dmin = _parse(params.go_duration, d, "query.durationMin") if (d := p("durationMin", "duration_min")) else None
    dmax = _parse(params.go_duration, d, "query.durationMax") if (d := p("durationMax", "duration_max")) else None
    depth = p("searchDepth", "search_depth") or _param(request, "query.num_traces")
    attrs_text = p("attributes", "attributes")
    attrs: tuple[tuple[str, str], ...] = ()
    if attrs_text:
        attrs = _parse(params.tags, [attrs_text], [])
    return TraceQuery(
        service_name=p("serviceName", "service_name"),
        # jaeger-ui 2.20+ (src/api/v3/client.ts) sends the operation as query.span_name.
        operation_name=p("operationName", "operation_name") or p("spanName", "span_name"),
        attributes=attrs,
        start_min_ns=smin,
        start_max_ns=smax,
        duration_min_ns=dmin,
        duration_max_ns=dmax,
        limit=_parse(params.integer, depth, "query.searchDepth", 1) if depth else 100,
    )


@router.get("/traces")
def find_traces(request: Request, svc: QueryServiceDep) -> Response:
    query = v3_query(request)
    raw = params.boolean(_param(request, "query.rawTraces", "query.raw_traces"))
    results = svc.find_traces(query, raw=raw)
    if not results:
        raise V3APIError(404, "No traces found")
    return _json(_merge_traces(results))


def summary_json(s: TraceSummary) -> dict:
    doc: dict[str, Any] = {
        "traceId": s.trace_id.hex(),
        "rootServiceName": s.root_service_name,
        "rootOperationName": s.root_span_name,
        "minStartTimeUnixNano": str(s.start_ns),
        "maxEndTimeUnixNano": str(s.end_ns),
        "spanCount": s.span_count,
        "errorSpanCount": s.error_span_count,
        "services": [{"name": x.name, "spanCount": x.span_count, "errorSpanCount": x.error_span_count}
                     for x in s.services],
    }
    return {k: v for k, v in doc.items() if v not in (0, "", [])}


@router.get("/trace-summaries")
def trace_summaries(request: Request, svc: QueryServiceDep) -> Response:
    summaries = svc.find_trace_summaries(v3_query(request))
    if not summaries:
        raise V3APIError(404, "No traces found")
    return _json({"summaries": [summary_json(s) for s in summaries]})


@router.get("/services")
def services(svc: QueryServiceDep) -> Response:
    return _json({"services": svc.get_services()})


@router.get("/operations")
def operations(request: Request, svc: QueryServiceDep) -> Response:
    service = request.query_params.get("service")
    if not service:
        raise V3APIError(400, "parameter 'service' is required")
    kind = _parse(params.span_kind, request.query_params.get("spanKind") or request.query_params.get("span_kind"))
    ops = [{"name": op.name, "spanKind": SPAN_KIND_NAMES.get(op.span_kind) if op.span_kind else "internal"}
           for op in svc.get_operations(service, kind)]
    return _json({"operations": ops})
