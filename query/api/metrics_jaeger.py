"""Jaeger's metrics API (the Monitor tab): ``/api/metrics/{latencies,calls,errors,minstep}``.

Parameters as Jaeger's query handler parses them: ``service`` (repeatable, required),
``quantile`` (latencies only), ``groupByOperation``, ``spanKind`` (repeatable: unspecified,
internal, server, client, producer, consumer; default server), ``endTs`` (Unix ms, default
now), ``lookback``, ``step`` and ``ratePer`` (ms; defaults 1h, 5s, 10m). The answer is a bare
``MetricFamily`` (not Jaeger's envelope): ``{"name", "type": "GAUGE", "help", "metrics":
[{"labels": [{"name", "value"}], "metricPoints": [{"gaugeValue": {"doubleValue"},
"timestamp"}]}]}``, computed from the span metrics Spanlake derives at ingest (see
:mod:`spanlake.query.metrics_query`). Errors use Jaeger's envelope with status 400.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import Response

from spanlake.metrics_model import SPAN_KIND_LABELS
from spanlake.query import metrics_query as mq
from spanlake.query.api.deps import ConfigDep, QueryServiceDep
from spanlake.query.api.jaeger_legacy import JaegerAPIError, render
from spanlake.query.jaeger_json import jaeger_envelope

router = APIRouter(prefix="/api/metrics", tags=["jaeger-metrics"])

MS = 1_000_000
_KINDS = {name.removeprefix("SPAN_KIND_").lower(): name for name in SPAN_KIND_LABELS.values()}
_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def _parse_error(param: str, message: str) -> JaegerAPIError:
    return JaegerAPIError(400, f"unable to parse param '{param}': {message}")


def _ms(request: Request, name: str, default_ms: int | None) -> int:
    text = request.query_params.get(name, "")
    if text == "":
        if default_ms is None:
            return time.time_ns() // MS
        return default_ms
    try:
        return int(text)
    except ValueError:
        raise _parse_error(name, f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def _query(request: Request) -> mq.RedQuery:
    q = request.query_params
    services = q.getlist("service")
    if not services:
        raise _parse_error("service", "please provide at least one service name")
    group = q.get("groupByOperation", "")
    if group and group.lower() not in _BOOLS:
        raise _parse_error("groupByOperation", f'strconv.ParseBool: parsing "{group}": invalid syntax')
    kinds = q.getlist("spanKind") or ["server"]
    for k in kinds:
        if k not in _KINDS:
            raise _parse_error("spanKind", f"unsupported span kind: '{k}'")
    end_ms = _ms(request, "endTs", None)
    lookback, step, rate_per = (_ms(request, n, d) for n, d in (("lookback", 3_600_000), ("step", 5_000),
                                                                ("ratePer", 600_000)))
    for name, value in (("lookback", lookback), ("step", step), ("ratePer", rate_per)):
        if value <= 0:
            raise _parse_error(name, "must be positive")
    if lookback // step > 11_000:
        raise JaegerAPIError(400, "exceeded maximum resolution of 11,000 points per timeseries: use a larger step")
    return mq.RedQuery(
        services=tuple(services),
        span_kinds=tuple(_KINDS[k] for k in kinds),
        group_by_operation=_BOOLS.get(group.lower(), False) if group else False,
        end_ns=end_ms * MS,
        lookback_ns=lookback * MS,
        step_ns=step * MS,
        rate_per_ns=rate_per * MS,
    )


def _timestamp(ns: int) -> str:
    """RFC 3339 as protobuf's JSON mapping writes a Timestamp (0, 3, 6 or 9 fraction digits)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        digits = f"{frac:09d}"
        digits = digits[:3] if digits.endswith("000000") else digits[:6] if digits.endswith("000") else digits
        text += "." + digits
    return text + "Z"


def _family(name: str, help_text: str, q: mq.RedQuery, results: list[mq.Points]) -> dict:
    if q.group_by_operation:
        name = name.replace("service", "service_operation", 1)
        help_text += " & operation"
    return {
        "name": name,
        "type": "GAUGE",
        "help": help_text,
        "metrics": [
            {
                "labels": [{"name": k, "value": v} for k, v in p.labels],
                "metricPoints": [
                    {"gaugeValue": {"doubleValue": v}, "timestamp": _timestamp(t)}
                    for t, v in zip(p.times, p.values) if not math.isinf(v)
                ],
            }
            for p in results
        ],
    }


@router.get("/latencies")
def latencies(request: Request, svc: QueryServiceDep, config: ConfigDep) -> Response:
    text = request.query_params.get("quantile", "")
    try:
        quantile = float(text)
    except ValueError:
        raise _parse_error("quantile", f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None
    if not 0 <= quantile <= 1:
        raise _parse_error("quantile", "must be between 0 and 1")
    q = _query(request)
    results = mq.latencies(svc, q, quantile, config.metrics.resolution_ns)
    return render(_family("service_latencies", f"{quantile:.2f}th quantile latency, grouped by service", q, results),
                  request)


@router.get("/calls")
def calls(request: Request, svc: QueryServiceDep, config: ConfigDep) -> Response:
    q = _query(request)
    results = mq.call_rates(svc, q, config.metrics.resolution_ns)
    return render(_family("service_call_rate", "calls/sec, grouped by service", q, results), request)


@router.get("/errors")
def errors(request: Request, svc: QueryServiceDep, config: ConfigDep) -> Response:
    q = _query(request)
    results = mq.error_rates(svc, q, config.metrics.resolution_ns)
    return render(_family("service_error_rate",
                          "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service",
                          q, results), request)


@router.get("/minstep")
def minstep(request: Request, config: ConfigDep) -> Response:
    """The smallest useful step, in ms: the aggregation resolution (Jaeger's envelope)."""
    return render(jaeger_envelope(config.metrics.resolution_ns // MS), request)

