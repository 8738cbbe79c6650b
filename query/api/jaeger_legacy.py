"""Jaeger's internal HTTP JSON API at ``/api``: what jaeger-ui and Grafana's Jaeger source call.

Every response uses Jaeger's envelope ``{"data", "total", "limit", "offset", "errors"}``;
errors carry the same envelope with ``data: null`` and status 400 (bad parameter), 404 (trace
not found) or 500. Times are microseconds (``start``/``end``) or milliseconds
(``endTs``/``lookback``), durations Go duration strings, as Jaeger's query handler parses them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spanlake.query.api import params
from spanlake.query.api.deps import QueryServiceDep
from spanlake.query.jaeger_json import jaeger_envelope, trace_to_jaeger_ui
from spanlake.query.service import TraceResult
from spanlake.storage.api import TraceQuery

router = APIRouter(prefix="/api", tags=["jaeger"])

DEFAULT_LOOKBACK_US = 2 * 86_400 * 1_000_000
MAX_LIMIT = 1500


class JaegerAPIError(Exception):
    """Rendered as Jaeger's envelope with ``errors: [{code, msg}]``."""

    def __init__(self, code: int, msg: str, trace_id: str | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.trace_id = code, msg, trace_id


def render(doc: Any, request: Request, status: int = 200) -> Response:
    pretty = params.boolean(request.query_params.get("prettyPrint"))
    body = json.dumps(doc, indent=4 if pretty else None, separators=None if pretty else (",", ":"))
    return Response(body, status, media_type="application/json")


def error_response(request: Request, exc: JaegerAPIError) -> Response:
    err: dict[str, Any] = {"code": exc.code, "msg": exc.msg}
    if exc.trace_id:
        err["traceID"] = exc.trace_id
    return render(jaeger_envelope(None, errors=[err]), request, exc.code)


def _jaeger(result: TraceResult) -> dict:
    return trace_to_jaeger_ui(result.spans, result.span_warnings, result.warnings)


def _parse(fn, *args):
    try:
        return fn(*args)
    except params.ParamError as e:
        raise JaegerAPIError(400, str(e)) from None


@router.get("/services")
def services(request: Request, svc: QueryServiceDep) -> Response:
    names = svc.get_services()
    return render(jaeger_envelope(names, total=len(names)), request)


@router.get("/services/{service}/operations")
def service_operations(service: str, request: Request, svc: QueryServiceDep) -> Response:
    names = sorted({op.name for op in svc.get_operations(service)})
    return render(jaeger_envelope(names, total=len(names)), request)


@router.get("/operations")
def operations(request: Request, svc: QueryServiceDep) -> Response:
    service = request.query_params.get("service")
    if not service:
        raise JaegerAPIError(400, "parameter 'service' is required")
    kind = _parse(params.span_kind, request.query_params.get("spanKind"))
    from spanlake.model import SPAN_KIND_NAMES

    ops = [{"name": op.name, "spanKind": SPAN_KIND_NAMES.get(op.span_kind, "") if op.span_kind else ""}
           for op in svc.get_operations(service, kind)]
    return render(jaeger_envelope(ops, total=len(ops)), request)


def search_query(request: Request) -> TraceQuery:
    q = request.query_params
    end_us = _parse(params.integer, q["end"], "end") if q.get("end") else time.time_ns() // 1000
    start_us = _parse(params.integer, q["start"], "start") if q.get("start") else end_us - DEFAULT_LOOKBACK_US
    if end_us < start_us:
        raise JaegerAPIError(400, "unable to parse param 'end': end time must be after start time")
    min_d = _parse(params.go_duration, q["minDuration"], "minDuration") if q.get("minDuration") else None
    max_d = _parse(params.go_duration, q["maxDuration"], "maxDuration") if q.get("maxDuration") else None
    if min_d is not None and max_d is not None and max_d < min_d:
        raise JaegerAPIError(400, "unable to parse param 'maxDuration': must be greater than minDuration")
    limit = _parse(params.integer, q["limit"], "limit", 0) if q.get("limit") else 100
    tags = _parse(params.tags, q.getlist("tags"), q.getlist("tag"))
    return TraceQuery(
        service_name=q.get("service") or None,
        operation_name=q.get("operation") or None,
        attributes=tags,
        start_min_ns=start_us * 1000,
        start_max_ns=end_us * 1000 + 1000,
        duration_min_ns=min_d,
        duration_max_ns=max_d,
        limit=min(limit or 100, MAX_LIMIT),
    )


@router.get("/traces")
def find_traces(request: Request, svc: QueryServiceDep) -> Response:
    raw = params.boolean(request.query_params.get("raw"))
    ids_text = request.query_params.getlist("traceID")
    if ids_text:
        ids = [_parse(params.trace_id, t) for t in ids_text]
        results = svc.get_traces(ids, raw=raw)
        found = {r.trace_id for r in results}
        errors = [{"code": 404, "msg": "trace not found", "traceID": t.hex()} for t in ids if t not in found]
        return render(jaeger_envelope([_jaeger(r) for r in results], errors=errors or None), request)
    query = search_query(request)
    results = svc.find_traces(query, raw=raw)
    return render(jaeger_envelope([_jaeger(r) for r in results]), request)


@router.get("/traces/{trace_id}")
def get_trace(trace_id: str, request: Request, svc: QueryServiceDep) -> Response:
    tid = _parse(params.trace_id, trace_id)
    q = request.query_params
    start = _parse(params.integer, q["start"], "start") * 1000 if q.get("start") else None
    end = _parse(params.integer, q["end"], "end") * 1000 + 1000 if q.get("end") else None
    result = svc.get_trace(tid, start, end, raw=params.boolean(q.get("raw")))
    if result is None:
        raise JaegerAPIError(404, "trace not found")
    return render(jaeger_envelope([_jaeger(result)]), request)


@router.post("/archive/{trace_id}")
def archive(trace_id: str, request: Request, svc: QueryServiceDep) -> Response:
    tid = _parse(params.trace_id, trace_id)
    if not svc.archive_trace(tid):
        raise JaegerAPIError(404, "trace not found")
    return render(jaeger_envelope([]), request)


@router.post("/transform")
async def transform(request: Request) -> Response:
    from spanlake.query.otlp_json_in import otlp_json_to_spans

    body = await request.body()
    try:
        spans = otlp_json_to_spans(json.loads(body))
    except (ValueError, KeyError, TypeError) as e:
        raise JaegerAPIError(400, f"cannot parse OTLP JSON: {e}") from None
    by_trace: dict[bytes, list] = {}
    for s in spans:
        by_trace.setdefault(s.trace_id, []).append(s)
    traces = [trace_to_jaeger_ui(group, None, None, sanitize=False) for group in by_trace.values()]
    return render(jaeger_envelope(traces), request)


@router.get("/dependencies")
def dependencies(request: Request, svc: QueryServiceDep) -> Response:
    q = request.query_params
    end_ms = _parse(params.integer, q["endTs"], "endTs") if q.get("endTs") else time.time_ns() // 1_000_000
    lookback = _parse(params.integer, q["lookback"], "lookback", 0) if q.get("lookback") else 86_400_000
    links = svc.get_dependencies((end_ms - lookback) * 1_000_000, end_ms * 1_000_000)
    service = q.get("service")
    data = [{"parent": d.parent, "child": d.child, "callCount": d.call_count} for d in links
            if not service or service in (d.parent, d.child)]
    return render(jaeger_envelope(data), request)
