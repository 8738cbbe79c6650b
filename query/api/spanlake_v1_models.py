"""Wire models of Spanlake's own API (``/api/spanlake/v1``), as the OpenAPI schema shows them.

Conventions: times are Unix nanoseconds and durations nanoseconds, both integers; ids are
lowercase hex (32 digits for a trace, 16 for a span); field names are camelCase. JavaScript
clients lose sub-microsecond precision on absolute times, which is why the trace view gives
span times as offsets from the trace start.

Large responses (the trace view, the per-span analysis) are serialised by hand for speed; their
models document the shape and the API tests validate real responses against them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ServiceList(BaseModel):
    services: list[str]


class OperationItem(BaseModel):
    name: str
    spanKind: str = Field(description="unspecified, internal, server, client, producer or consumer")


class OperationList(BaseModel):
    operations: list[OperationItem]


# --- search ------------------------------------------------------------------------------------


class ServiceCount(BaseModel):
    name: str
    spanCount: int
    errorCount: int


class TraceSummaryItem(BaseModel):
    traceId: str
    rootService: str = Field(description="empty when the root span has not arrived")
    rootOperation: str
    startNs: int
    durationNs: int
    spanCount: int
    errorCount: int
    services: list[ServiceCount]


class TraceSearchResult(BaseModel):
    startNs: int
    endNs: int
    limit: int
    traces: list[TraceSummaryItem] = Field(description="most recent first")


# --- one trace ---------------------------------------------------------------------------------


class GroupStatsItem(BaseModel):
    service: str
    operation: str | None = Field(description="null in the per-service breakdown")
    count: int
    totalNs: int
    selfNs: int
    criticalPathNs: int
    errors: int
    shareOfTrace: float = Field(description="self time / trace duration")
    criticalPathShare: float = Field(description="critical-path time / trace duration")


class TraceViewSpans(BaseModel):
    """One array per field, one entry per span, in waterfall (depth-first) order."""

    spanId: list[str]
    parent: list[int] = Field(description="row of the parent span, -1 for a root")
    service: list[int] = Field(description="index into ``services``")
    name: list[int] = Field(description="index into ``names``")
    kind: list[int] = Field(description="OTLP span kind number")
    status: list[int] = Field(description="0 unset, 1 ok, 2 error")
    start: list[int] = Field(description="offset in ns from the trace start")
    duration: list[int]
    self: list[int] = Field(description="self time in ns")
    criticalPath: list[int] = Field(description="critical-path time in ns; 0 when off the path")


class TraceViewEvents(BaseModel):
    span: list[int] = Field(description="row of the span the event belongs to")
    time: list[int] = Field(description="offset in ns from the trace start")
    name: list[int] = Field(description="index into ``names``")
    error: list[int] = Field(description="1 for exception events")


class CriticalPathSections(BaseModel):
    span: list[int]
    start: list[int] = Field(description="offset in ns from the trace start")
    end: list[int]


class TraceView(BaseModel):
    """A whole trace, compact enough for 100,000 spans: columns, with names interned."""

    traceId: str
    startNs: int
    durationNs: int
    spanCount: int
    errorCount: int
    depth: int
    rootService: str
    rootOperation: str
    services: list[str]
    names: list[str]
    spans: TraceViewSpans
    events: TraceViewEvents
    criticalPath: CriticalPathSections
    spanWarnings: dict[str, list[str]] = Field(description="row -> warnings, only rows that have some")
    warnings: list[str]
    byService: list[GroupStatsItem]
    byOperation: list[GroupStatsItem]


class SpanAnalysisItem(BaseModel):
    spanId: str
    parentSpanId: str = Field(description="empty for a root")
    service: str
    operation: str
    startNs: int
    durationNs: int
    selfTimeNs: int
    onCriticalPath: bool
    criticalPathNs: int
    criticalPathShare: float = Field(description="critical-path time of the span / trace duration")


class TraceAnalysisResult(BaseModel):
    traceId: str
    startNs: int
    durationNs: int
    spanCount: int
    errorCount: int
    depth: int
    services: list[str]
    rootService: str
    rootOperation: str
    spans: list[SpanAnalysisItem] = Field(description="in waterfall (depth-first) order")
    byService: list[GroupStatsItem]
    byOperation: list[GroupStatsItem]


class AttributeItem(BaseModel):
    key: str
    type: str = Field(description="string, bool, int, double, bytes, array, kvlist or empty")
    value: str = Field(description="string form (bytes as base64, arrays and maps as JSON)")


class ScopeDetail(BaseModel):
    name: str
    version: str
    attributes: list[AttributeItem]


class ResourceDetail(BaseModel):
    attributes: list[AttributeItem]
    droppedAttributesCount: int
    schemaUrl: str


class EventDetail(BaseModel):
    name: str
    timeNs: int
    offsetNs: int = Field(description="from the span start")
    attributes: list[AttributeItem]


class LinkDetail(BaseModel):
    traceId: str
    spanId: str
    traceState: str
    attributes: list[AttributeItem]
    stored: bool = Field(description="whether the linked trace is in the store")


class SpanDetail(BaseModel):
    traceId: str
    spanId: str
    parentSpanId: str
    service: str
    operation: str
    kind: str
    statusCode: str = Field(description="unset, ok or error")
    statusMessage: str
    startNs: int
    startOffsetNs: int = Field(description="from the trace start")
    durationNs: int
    selfTimeNs: int
    criticalPathNs: int
    depth: int
    childCount: int
    traceState: str
    flags: int
    attributes: list[AttributeItem]
    droppedAttributesCount: int
    resource: ResourceDetail
    scope: ScopeDetail
    events: list[EventDetail]
    droppedEventsCount: int
    links: list[LinkDetail]
    droppedLinksCount: int
    warnings: list[str]


class InTraceSearchResult(BaseModel):
    query: str
    spanIds: list[str] = Field(description="ids of the matching spans, in waterfall order")


# --- compare -----------------------------------------------------------------------------------


class PathStep(BaseModel):
    service: str
    operation: str
    occurrence: int = Field(description="index among earlier siblings with the same service and operation")


class CompareTraceInfo(BaseModel):
    traceId: str
    startNs: int
    durationNs: int
    spanCount: int
    errorCount: int
    rootService: str
    rootOperation: str


class SpanOnlyInItem(BaseModel):
    path: list[PathStep]
    spanId: str
    durationNs: int
    selfNs: int


class SpanChangeItem(BaseModel):
    path: list[PathStep]
    service: str
    operation: str
    spanIdA: str
    spanIdB: str
    durationANs: int
    durationBNs: int
    selfANs: int
    selfBNs: int
    durationDeltaNs: int
    selfDeltaNs: int
    impactNs: int = Field(description="absolute change of self time; the sort key")


class CompareSide(BaseModel):
    spanId: str
    startNs: int = Field(description="offset from the start of its trace")
    durationNs: int
    selfNs: int


class CompareRow(BaseModel):
    depth: int
    service: str
    operation: str
    a: CompareSide | None
    b: CompareSide | None


class CompareResult(BaseModel):
    a: CompareTraceInfo
    b: CompareTraceInfo
    matched: int
    durationDeltaNs: int
    onlyInA: list[SpanOnlyInItem]
    onlyInB: list[SpanOnlyInItem]
    changed: list[SpanChangeItem] = Field(description="sorted by impact, largest first")
    rows: list[CompareRow] = Field(description="both trees merged by path, depth-first")
    rowsTruncated: bool


# --- across traces -----------------------------------------------------------------------------


class LatencyFigures(BaseModel):
    count: int
    errorCount: int
    errorRate: float
    ratePerSecond: float
    p50Ns: int | None
    p90Ns: int | None
    p95Ns: int | None
    p99Ns: int | None
    maxNs: int | None


class HistogramBucketItem(BaseModel):
    lowerNs: int = Field(description="inclusive")
    upperNs: int = Field(description="exclusive")
    count: int
    errorCount: int
    exampleTraceIds: list[str]


class SeriesPointItem(LatencyFigures):
    timeNs: int = Field(description="start of the step")
    exampleTraceIds: list[str] = Field(description="the slowest traces of the step")


class SampleInfo(BaseModel):
    startNs: int
    endNs: int
    tracesScanned: int
    truncated: bool = Field(description="more traces matched than were scanned (the most recent ones were)")
    coveredStartNs: int = Field(description="start of the period the scanned traces cover")


class LatencyResult(SampleInfo):
    stepNs: int
    summary: LatencyFigures
    histogram: list[HistogramBucketItem]
    series: list[SeriesPointItem]


class OperationStatsItem(LatencyFigures):
    name: str
    spanKind: str
    totalNs: int


class OperationStatsResult(SampleInfo):
    service: str
    operations: list[OperationStatsItem]


class AttributeDifferenceItem(BaseModel):
    scope: str = Field(description="span or resource")
    key: str
    value: str
    selectedCount: int
    selectedTotal: int
    restCount: int
    restTotal: int
    selectedFrequency: float
    restFrequency: float
    difference: float


class AttributeDifferencesResult(SampleInfo):
    selection: str = Field(description="'errors' or 'slow'")
    thresholdNs: int | None
    selectedCount: int
    restCount: int
    differences: list[AttributeDifferenceItem]


class DependencyNode(BaseModel):
    name: str
    callsIn: int
    callsOut: int
    errorsIn: int


class DependencyEdge(BaseModel):
    parent: str
    child: str
    callCount: int
    errorCount: int
    errorRate: float


class DependencyGraph(BaseModel):
    startNs: int
    endNs: int
    nodes: list[DependencyNode]
    edges: list[DependencyEdge]
