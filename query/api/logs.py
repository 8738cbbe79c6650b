"""Log routes of ``/api/spanlake/v1``: search, count histogram, and the logs of a trace.

* ``GET /logs``: records matching a filter, newest first, ``limit`` per page; ``nextCursor``
  continues with the next page (pass it back as ``cursor`` with the same filter);
* ``GET /logs/histogram``: record counts per ``step`` over the range, for the same filter,
  empty buckets included as 0;
* ``GET /traces/{traceId}/logs``: every record of a trace, grouped by span.

Times follow the rest of ``/api/spanlake/v1``: ``start`` and ``end`` are Unix nanoseconds
(``[start, end)``), ``lookback`` (``15m``, ``1h``...) gives the range length when ``start`` is
absent, and ``end`` defaults to now. A record's time is its own, or its observed time when it
has none. Every malformed parameter answers 400 with ``{"detail": "unable to parse param
'<name>': ..."}``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from spanlake.config import parse_duration_ns
from spanlake.log_model import LogRecord, parse_severity, severity_name
from spanlake.model import string_form, value_type
from spanlake.query.api.deps import QueryServiceDep
from spanlake.storage.api import InvalidLogQuery, LogQuery, decode_log_cursor

router = APIRouter(prefix="/api/spanlake/v1", tags=["logs"])

DEFAULT_LOOKBACK_NS = 3600 * 10**9
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Most buckets a histogram may have (Prometheus' limit on points per series).
MAX_BUCKETS = 11_000
#: Default histogram steps: the smallest that gives at most ``_TARGET_BUCKETS`` buckets.
_NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_TARGET_BUCKETS = 120
_QUERY_FIELDS = {"body_regex": "regex", "cursor": "cursor", "step_ns": "step"}


# ---------------------------------------------------------------------------------------------
# Wire models
# ---------------------------------------------------------------------------------------------


class LogAttribute(BaseModel):
    key: str
    type: str = Field(description="string, bool, int, double, bytes, array, kvlist or empty")
    value: str = Field(description="string form (bytes as base64, arrays and maps as JSON)")


class LogResource(BaseModel):
    attributes: list[LogAttribute]
    droppedAttributesCount: int
    schemaUrl: str


class LogScope(BaseModel):
    name: str
    version: str
    attributes: list[LogAttribute]


class LogItem(BaseModel):
    timeNs: int = Field(description="the record's time, or its observed time when it has none")
    observedTimeNs: int
    severityNumber: int = Field(description="0 unspecified, 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, "
                                            "17-20 ERROR, 21-24 FATAL")
    severityText: str = Field(description="as sent")
    severity: str = Field(description="short name of severityNumber, e.g. INFO, WARN2, UNSPECIFIED")
    body: str = Field(description="text of the body; the string form of a non-string body (JSON for maps)")
    bodyType: str = Field(description="string, bool, int, double, bytes, array, kvlist or empty")
    bodyJson: Any = Field(None, description="the body as JSON, for array and kvlist bodies only")
    attributes: list[LogAttribute]
    droppedAttributesCount: int
    flags: int
    traceId: str = Field(description="32 hex digits, empty when not correlated")
    spanId: str = Field(description="16 hex digits, empty when not correlated")
    eventName: str
    service: str
    resource: LogResource
    scope: LogScope


class LogSearchResult(BaseModel):
    startNs: int
    endNs: int
    limit: int
    logs: list[LogItem] = Field(description="newest first")
    nextCursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class LogHistogramBucket(BaseModel):
    startNs: int
    count: int


class LogHistogramResult(BaseModel):
    startNs: int
    endNs: int
    stepNs: int
    total: int
    buckets: list[LogHistogramBucket] = Field(description="every step of [startNs, endNs), empty ones as 0")


class TraceLogGroup(BaseModel):
    spanId: str = Field(description="empty for records with the trace id but no span id")
    logs: list[LogItem] = Field(description="oldest first")


class TraceLogsResult(BaseModel):
    traceId: str
    logCount: int
    spans: list[TraceLogGroup] = Field(description="in the order of each group's first record")


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


def bad_param(name: str, message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=f"unable to parse param '{name}': {message}")


def _integer(text: str | None, name: str) -> int | None:
    if text is None or text.strip() == "":
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise bad_param(name, f"expected an integer, got {text[:40]!r}") from None


def _duration(text: str, name: str) -> int:
    t = text.strip()
    try:
        ns = int(t) if t.isdigit() else parse_duration_ns(t)
    except ValueError:
        raise bad_param(name, f"expected a duration such as 30s, 5m or 1h, got {text[:40]!r}") from None
    if ns <= 0:
        raise bad_param(name, "must be positive")
    return ns


def _hex_id(text: str | None, name: str, digits: int) -> bytes | None:
    if text is None or text.strip() == "":
        return None
    t = text.strip()
    if not re.fullmatch(f"[0-9a-fA-F]{{1,{digits}}}", t):
        raise bad_param(name, f"expected up to {digits} hex digits, got {text[:40]!r}")
    return bytes.fromhex(t.rjust(digits, "0"))


def _attributes(pairs: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise bad_param("attr", f"expected key=value, got {pair[:60]!r}")
        out.append((key.strip(), value))
    return tuple(out)


def log_filter(
    start: Annotated[str | None, Query(description="Range start, Unix ns (inclusive); default end - lookback.")] = None,
    end: Annotated[str | None, Query(description="Range end, Unix ns (exclusive); default now.")] = None,
    lookback: Annotated[str | None, Query(description="Range length when `start` is absent: `15m`, `1h`, `2d`. "
                                                      "Default 1h.")] = None,
    service: Annotated[str | None, Query(description="Service name (resource `service.name`).")] = None,
    minSeverity: Annotated[str | None, Query(description="Lowest severity: a number (0-24) or a name such as "
                                                         "DEBUG, INFO, WARN, ERROR, FATAL, WARN2.")] = None,
    contains: Annotated[str | None, Query(description="Text the body contains (case-insensitive).")] = None,
    regex: Annotated[str | None, Query(description="Regular expression (RE2) that matches somewhere in the "
                                                   "body; `(?i)` for case-insensitive.")] = None,
    attr: Annotated[list[str] | None, Query(description="Attribute condition `key=value` (string form), "
                                                        "repeatable; record, scope or resource attribute. Special "
                                                        "keys: resource.<key>, scope.name, scope.version, "
                                                        "event.name.")] = None,
    traceId: Annotated[str | None, Query(description="Trace id, up to 32 hex digits.")] = None,
    spanId: Annotated[str | None, Query(description="Span id, up to 16 hex digits.")] = None,
) -> LogQuery:
    """FastAPI dependency: the filter shared by search and histogram, validated."""
    end_ns = _integer(end, "end")
    end_ns = time.time_ns() if end_ns is None else end_ns
    start_ns = _integer(start, "start")
    if start_ns is None:
        start_ns = end_ns - (_duration(lookback, "lookback") if lookback else DEFAULT_LOOKBACK_NS)
    if end_ns <= start_ns:
        raise bad_param("end", "must be after start")
    severity = None
    if minSeverity is not None and minSeverity.strip():
        try:
            severity = parse_severity(minSeverity)
        except ValueError as e:
            raise bad_param("minSeverity", str(e)) from None
    return LogQuery(
        start_ns=start_ns,
        end_ns=end_ns,
        service_name=service or None,
        min_severity=severity,
        body_contains=contains or None,
        body_regex=regex or None,
        attributes=_attributes(attr),
        trace_id=_hex_id(traceId, "traceId", 32),
        span_id=_hex_id(spanId, "spanId", 16),
    )


LogFilterDep = Annotated[LogQuery, Depends(log_filter)]


def _run(fn: Any, *args: Any) -> Any:
    """Call the service, turning a query the store refuses into a 400 naming the parameter."""
    try:
        return fn(*args)
    except InvalidLogQuery as e:
        raise bad_param(_QUERY_FIELDS.get(e.field, e.field), str(e)) from None


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def _attrs(attrs: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "type": value_type(v), "value": string_form(v)} for k, v in attrs.items()]


def log_item(r: LogRecord) -> dict[str, Any]:
    """The JSON of one record (model: ``LogItem``)."""
    body_type = value_type(r.body)
    body = string_form(r.body)
    return {
        "timeNs": r.time_ns,
        "observedTimeNs": r.observed_time_ns,
        "severityNumber": r.severity_number,
        "severityText": r.severity_text,
        "severity": severity_name(r.severity_number),
        "body": body,
        "bodyType": body_type,
        "bodyJson": json.loads(body) if body_type in ("array", "kvlist") else None,
        "attributes": _attrs(r.attributes),
        "droppedAttributesCount": r.dropped_attributes_count,
        "flags": r.flags,
        "traceId": r.trace_id.hex() if r.trace_id else "",
        "spanId": r.span_id.hex() if r.span_id else "",
        "eventName": r.event_name,
        "service": r.service_name,
        "resource": {
            "attributes": _attrs(r.resource.attributes),
            "droppedAttributesCount": r.resource.dropped_attributes_count,
            "schemaUrl": r.resource.schema_url,
        },
        "scope": {"name": r.scope.name, "version": r.scope.version, "attributes": _attrs(r.scope.attributes)},
    }


def default_step_ns(range_ns: int) -> int:
    for seconds in _NICE_STEPS_S:
        step = seconds * 10**9
        if range_ns <= step * _TARGET_BUCKETS:
            return step
    return -(-range_ns // _TARGET_BUCKETS)


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------


@router.get("/logs", response_model=LogSearchResult, summary="Search logs, newest first")
def search_logs(
    svc: QueryServiceDep,
    f: LogFilterDep,
    limit: Annotated[str | None, Query(description=f"Most records per page, 1-{MAX_LIMIT}; default "
                                                   f"{DEFAULT_LIMIT}.")] = None,
    cursor: Annotated[str | None, Query(description="`nextCursor` of the previous page.")] = None,
) -> dict:
    n = _integer(limit, "limit")
    n = DEFAULT_LIMIT if n is None else n
    if not 1 <= n <= MAX_LIMIT:
        raise bad_param("limit", f"must be between 1 and {MAX_LIMIT}")
    if cursor:
        try:
            decode_log_cursor(cursor)
        except ValueError as e:
            raise bad_param("cursor", str(e)) from None
    query = dataclasses.replace(f, limit=n, cursor=cursor or None)
    page = _run(svc.search_logs, query)
    return {"startNs": f.start_ns, "endNs": f.end_ns, "limit": n,
            "logs": [log_item(r) for r in page.records], "nextCursor": page.next_cursor}


@router.get("/logs/histogram", response_model=LogHistogramResult, summary="Log counts over time")
def log_histogram(
    svc: QueryServiceDep,
    f: LogFilterDep,
    step: Annotated[str | None, Query(description="Bucket width: `30s`, `5m`, `1h` or Unix ns; by default "
                                                  f"about {_TARGET_BUCKETS} buckets over the range.")] = None,
) -> dict:
    assert f.start_ns is not None and f.end_ns is not None
    step_ns = _duration(step, "step") if step else default_step_ns(f.end_ns - f.start_ns)
    if -(-(f.end_ns - f.start_ns) // step_ns) > MAX_BUCKETS:
        raise bad_param("step", f"gives more than {MAX_BUCKETS} buckets over the range; use a larger step")
    buckets = _run(svc.log_histogram, f, step_ns)
    return {"startNs": f.start_ns, "endNs": f.end_ns, "stepNs": step_ns, "total": sum(b.count for b in buckets),
            "buckets": [{"startNs": b.start_ns, "count": b.count} for b in buckets]}


@router.get("/traces/{traceId}/logs", response_model=TraceLogsResult, summary="Logs of a trace, grouped by span")
def trace_logs(
    svc: QueryServiceDep, traceId: Annotated[str, Path(description="Trace id, up to 32 hex digits.")]
) -> dict:
    tid = _hex_id(traceId, "traceId", 32)
    if tid is None:
        raise bad_param("traceId", "expected up to 32 hex digits")
    groups = svc.trace_logs(tid)
    return {
        "traceId": tid.hex(),
        "logCount": sum(len(records) for _, records in groups),
        "spans": [{"spanId": span_id.hex(), "logs": [log_item(r) for r in records]} for span_id, records in groups],
    }
