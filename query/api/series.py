"""``/api/spanlake/v1/series``: stored metric series by name, label matchers, range and step.

What the UI's service dashboards chart: span metrics, service-graph and log series derived at
ingest, and every OTLP metric services send. ``metric`` is a name or a PromQL selector
(``traces_span_metrics_calls_total{service_name="cart"}``); ``match`` adds matchers
(``label="v"``, ``!=``, ``=~``, ``!~``; repeatable). ``fn`` picks what each point is:

* ``raw``: the rows of the step combined as their kind says (sum of deltas, latest gauge or
  cumulative value; histograms also give counts and buckets);
* ``increase`` / ``rate``: increase of a counter or histogram in the step (per second for
  ``rate``); cumulative OTLP counters are differenced, with resets;
* ``quantile``: ``histogram_quantile(q)`` of the step's buckets.

``by`` sums series with equal values of the listed labels. Times are Unix ns; a step of 5
minutes or more aligns the start to the step, so long ranges read the 5-minute rollup.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from spanlake.query import metrics_query as mq
from spanlake.query.api.deps import ConfigDep, QueryServiceDep
from spanlake.query.api.spanlake_v1_params import (
    EndParam,
    LookbackParam,
    StartParam,
    bad_request,
    duration_ns,
    time_range,
)
from spanlake.storage.api import InvalidSampleQuery, LabelMatcher

router = APIRouter(prefix="/api/spanlake/v1", tags=["spanlake"])

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_SELECTOR = re.compile(rf"\s*({_NAME})?\s*(?:\{{(.*)\}})?\s*", re.S)
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
#: Steps a range gets when no step is given.
AUTO_STEPS = 240


class ExemplarOut(BaseModel):
    time: int = Field(description="Unix ns.")
    value: float
    trace_id: str
    span_id: str


class SeriesOut(BaseModel):
    labels: dict[str, str]
    kind: str = Field(description="gauge, delta, cumulative, delta_histogram or cumulative_histogram (as stored).")
    points: list[tuple[int, float | None]] = Field(description="(step start in Unix ns, value); null for NaN.")
    counts: list[float] | None = Field(None, description="Histogram observations per point (raw, increase, rate).")
    bounds: list[float] | None = Field(None, description="Histogram bucket upper bounds (+Inf implicit).")
    buckets: list[list[float]] | None = Field(None, description="Per-bucket counts per point, not cumulative.")
    exemplars: list[ExemplarOut] | None = None


class SeriesResponse(BaseModel):
    metric: str
    fn: str
    start: int
    end: int
    step: int
    series: list[SeriesOut]


def parse_matchers(text: str) -> list[LabelMatcher]:
    """``a="x", b=~"y|z"`` (braces optional) -> matchers; ValueError naming the problem."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    out, pos = [], 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"bad label matcher at {body[pos:pos + 40]!r}: use label=\"value\", !=, =~ or !~")
        value = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), m.group(3))
        out.append(LabelMatcher(m.group(1), m.group(2), value))
        pos = m.end()
    return out


def parse_selector(text: str) -> tuple[str, list[LabelMatcher]]:
    m = _SELECTOR.fullmatch(text)
    if m is None or not m.group(1):
        raise ValueError(f"not a metric name or selector: {text[:80]!r}")
    return m.group(1), parse_matchers(m.group(2) or "")


MetricParam = Annotated[
    str, Query(description="Metric name or selector, e.g. `traces_span_metrics_calls_total{service_name=\"cart\"}`.")
]
MatchParam = Annotated[
    list[str] | None,
    Query(description="Label matcher(s), e.g. `span_kind=~\"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER\"`; repeatable."),
]
StepParam = Annotated[
    str | None,
    Query(description="Step, e.g. `15s`, `5m` (bare number: ns). Default: the range in about 240 steps, "
                      "at least the resolution."),
]
FnParam = Annotated[str, Query(description="raw, increase, rate or quantile.")]
QuantileParam = Annotated[float | None, Query(description="Quantile for fn=quantile, 0..1.")]
ByParam = Annotated[str | None, Query(description="Comma-separated labels to sum by, e.g. `service_name,span_name`.")]
ExemplarsParam = Annotated[bool, Query(description="Also return the exemplars (trace and span ids) of each series.")]


@router.get("/series", response_model=SeriesResponse, summary="Metric series by name, labels, range and step")
def series(
    svc: QueryServiceDep,
    config: ConfigDep,
    metric: MetricParam,
    match: MatchParam = None,
    start: StartParam = None,
    end: EndParam = None,
    lookback: LookbackParam = None,
    step: StepParam = None,
    fn: FnParam = "raw",
    q: QuantileParam = None,
    by: ByParam = None,
    exemplars: ExemplarsParam = False,
) -> SeriesResponse:
    try:
        name, matchers = parse_selector(metric)
        for text in match or []:
            matchers.extend(parse_matchers(text))
    except ValueError as e:
        raise bad_request(f"unable to parse param 'metric'/'match': {e}") from None
    if fn not in mq.FUNCTIONS:
        raise bad_request(f"unable to parse param 'fn': use one of {', '.join(mq.FUNCTIONS)}")
    if fn == "quantile" and (q is None or not 0 <= q <= 1):
        raise bad_request("unable to parse param 'q': fn=quantile needs a quantile between 0 and 1")
    start_ns, end_ns = time_range(start, end, lookback)
    resolution = config.metrics.resolution_ns
    step_ns = duration_ns(step, "step")
    if step_ns is None:
        per = -(-(end_ns - start_ns) // AUTO_STEPS)
        step_ns = max(resolution, -(-per // resolution) * resolution)
    if step_ns <= 0:
        raise bad_request("unable to parse param 'step': must be positive")
    if step_ns >= 300_000_000_000:
        start_ns -= start_ns % step_ns
    labels_by = [b.strip() for b in by.split(",") if b.strip()] if by is not None else None
    try:
        found = mq.series(svc, name, matchers, start_ns, end_ns, step_ns, fn, labels_by, q, exemplars)
    except InvalidSampleQuery as e:
        raise bad_request(str(e)) from None
    return SeriesResponse(
        metric=name, fn=fn, start=start_ns, end=end_ns, step=step_ns,
        series=[
            SeriesOut(
                labels=r.labels, kind=r.kind, points=list(zip(r.times, r.values)), counts=r.counts, bounds=r.bounds,
                buckets=r.buckets,
                exemplars=None if r.exemplars is None else [
                    ExemplarOut(time=e.time_ns, value=e.value, trace_id=e.trace_id, span_id=e.span_id)
                    for e in r.exemplars
                ],
            )
            for r in found
        ],
    )
