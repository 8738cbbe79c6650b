"""The storage contracts: what every Spanlake store provides, and the values it takes and returns.

Contracts that hold for every method of every store:

* Times are integer nanoseconds since the Unix epoch; durations are integer nanoseconds.
* Trace ids are 16 raw bytes, span ids 8 raw bytes.
* Unknown ids yield nothing (an empty list), never an error.
* Duplicate span ids are returned exactly as they were stored (the read path reports them).
* Results belong to the caller: it may mutate them, so a store that caches returns copies.
* A time hint (``start_ns``/``end_ns`` on :class:`GetTrace`) only narrows where the store looks;
  a store may ignore it, and a trace whose spans lie partly outside the hint still comes back
  whole when the store finds it.

The collector depends on :class:`SpanWriter` only; the query side on the reader protocols.
"""

from __future__ import annotations

import base64
import binascii
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from spanlake.log_model import LogBatch, LogRecord
from spanlake.metrics_model import SampleBatch
from spanlake.model import Span, SpanBatch

if TYPE_CHECKING:
    import pyarrow as pa


class StoreError(Exception):
    """A store failed (I/O, catalog, SQL). The caller maps it to HTTP 500 / gRPC INTERNAL."""


class WriteQueueFull(StoreError):
    """The write queue holds as much as it may: the caller answers 429 / RESOURCE_EXHAUSTED."""


class StoreClosed(StoreError):
    """The store was closed; nothing more can be written. Callers answer 503 / UNAVAILABLE."""


@dataclass(frozen=True)
class GetTrace:
    trace_id: bytes
    start_ns: int | None = None
    end_ns: int | None = None


@dataclass(frozen=True)
class TraceQuery:
    """Search parameters with Jaeger's semantics: every condition must hold on one span.

    ``attributes`` maps a tag key to the string form of its value. Besides plain attribute keys
    (matched against span, scope, resource, event and link attributes) the keys ``error``
    (``true``/``false``), ``span.kind`` (``server``...), ``span.status`` (``ok``/``error``/``unset``),
    ``scope.name``, ``scope.version`` and ``resource.<key>`` (resource only) are understood.
    Duration bounds apply to the matching span. Traces come back most recent first (by the start
    of the trace), at most ``limit`` of them.
    """

    service_name: str | None = None
    operation_name: str | None = None
    span_kind: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    start_min_ns: int | None = None  # inclusive, on span start
    start_max_ns: int | None = None  # exclusive, on span start
    duration_min_ns: int | None = None
    duration_max_ns: int | None = None
    limit: int = 20


@dataclass(frozen=True)
class FoundTrace:
    trace_id: bytes
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class ServiceSpanCount:
    name: str
    span_count: int
    error_span_count: int


@dataclass(frozen=True)
class TraceSummary:
    """Per-trace figures, read from the summary index rather than from the spans."""

    trace_id: bytes
    root_service_name: str  # "" when the root span has not arrived
    root_span_name: str
    start_ns: int
    end_ns: int
    span_count: int
    error_span_count: int
    services: tuple[ServiceSpanCount, ...] = ()


@dataclass(frozen=True)
class Operation:
    name: str
    span_kind: int  # OTLP SpanKind number


@dataclass(frozen=True)
class DependencyLink:
    parent: str
    child: str
    call_count: int
    error_count: int = 0


@dataclass(frozen=True)
class Capabilities:
    """What a backend supports; the query service falls back where something is missing."""

    trace_summaries: bool = True
    dependencies: bool = True
    retention: bool = True
    multi_process: bool = False


@dataclass
class StoreStats:
    """Figures a store reports for ``/metrics``."""

    queue_depth_spans: int = 0
    size_on_disk_bytes: int = 0
    commits: int = 0
    commit_seconds: float = 0.0  # wall time the commits took, in all
    committed_rows: int = 0  # spans and log records the commits wrote
    extra: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class SpanWriter(Protocol):
    def write_spans(self, batch: SpanBatch) -> "Future[None]":
        """Queue a batch; the future resolves once it is durably committed.

        Raises :class:`WriteQueueFull` at once (nothing queued) when the queue is full, and
        :class:`StoreClosed` after :meth:`close`. The future fails with :class:`StoreError` when
        the commit fails; a failed commit never affects other batches' futures except those
        committed in the same transaction.
        """
        ...


@runtime_checkable
class TraceReader(Protocol):
    def get_trace(self, query: GetTrace) -> list[Span]:
        """All stored spans of one trace (duplicates included), or ``[]``."""
        ...

    def get_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[Span]]:
        """Several traces at once; ids not found are absent from the result."""
        ...

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        """Traces with at least one span matching every condition, most recent first."""
        ...

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        """Summaries of the traces :meth:`find_trace_ids` would return, in the same order."""
        ...

    def get_services(self) -> list[str]:
        ...

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        """Distinct (span name, kind) pairs of a service, sorted by name then kind."""
        ...

    def span_latency_rows(
        self,
        service: str | None,
        operation: str | None,
        span_kind: int | None,
        attributes: tuple[tuple[str, str], ...],
        start_ns: int,
        end_ns: int,
        limit: int = 1_000_000,
        entry_only: bool = False,
    ) -> "pa.Table":
        """One row per span of ``service`` (of every service when None) starting in
        [start_ns, end_ns) that matches every given condition (``operation`` and ``span_kind``
        when not None, ``attributes`` as in :class:`TraceQuery`), for exact latency
        percentiles, histograms and series over every matching span of a range. With
        ``entry_only``, only entry spans: those whose parent is not a stored span of the same
        service (roots, spans called from another service, orphans), whenever the parent
        started.

        Columns: ``start_ns`` (int64), ``duration_ns`` (int64), ``is_error`` (bool: status
        error) and ``trace_id`` (binary), rows in start order. When more than ``limit`` spans
        match, the latest ``limit`` of them.
        """
        ...


@runtime_checkable
class DependencyReader(Protocol):
    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        """Caller -> callee service pairs from parent/child spans of different services."""
        ...


@runtime_checkable
class Store(SpanWriter, TraceReader, DependencyReader, Protocol):
    capabilities: Capabilities

    def archive_trace(self, trace_id: bytes) -> bool:
        """Exempt a trace from retention. False when the trace is unknown."""
        ...

    def apply_retention(self, cutoff_ns: int) -> int:
        """Delete spans that started before ``cutoff_ns`` (archived traces excepted); remove
        their files. Returns the number of spans deleted (or an estimate, never negative)."""
        ...

    def flush(self) -> None:
        """Block until everything queued so far is committed."""
        ...

    def stats(self) -> StoreStats:
        ...

    def close(self) -> None:
        """Commit what is queued, then release every resource. Idempotent."""
        ...


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------


class InvalidLogQuery(ValueError):
    """A :class:`LogQuery` the store cannot run (a regular expression it cannot compile);
    ``field`` names the offending field. Callers answer 400."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LogQuery:
    """Log search parameters; every given condition must hold on the record.

    * ``start_ns`` (inclusive) and ``end_ns`` (exclusive) apply to the record time (its time,
      or its observed time when it had none);
    * ``service_name`` is the resource's ``service.name``; ``min_severity`` a severity number
      (records of a higher or equal number match; 0 is unspecified);
    * ``body_contains`` matches the body text case-insensitively; ``body_regex`` is a regular
      expression (RE2 syntax) that must match somewhere in the body text. The body text of a
      non-string body is its string form (JSON for arrays and maps);
    * ``attributes`` maps a key to the string form of its value, as in :class:`TraceQuery`: a
      plain key matches record, scope or resource attributes, ``resource.<key>`` the resource
      only, ``scope.name``/``scope.version`` the scope, ``event.name`` the event name;
    * ``trace_id`` / ``span_id`` select correlated records.

    Records come back newest first (time, then ``log_id``, both descending), at most ``limit``;
    ``cursor`` is the ``next_cursor`` of the previous page of the same query.
    """

    start_ns: int | None = None
    end_ns: int | None = None
    service_name: str | None = None
    min_severity: int | None = None
    body_contains: str | None = None
    body_regex: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    trace_id: bytes | None = None
    span_id: bytes | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass
class LogPage:
    """One page of a log search; ``next_cursor`` is None when no record is left."""

    records: list[LogRecord]
    next_cursor: str | None = None


@dataclass(frozen=True)
class LogBucket:
    """Records in ``[start_ns, start_ns + step)`` of a histogram."""

    start_ns: int
    count: int


def encode_log_cursor(time_ns: int, log_id: int) -> str:
    """The opaque cursor that continues a search after the record (time_ns, log_id)."""
    return base64.urlsafe_b64encode(f"{time_ns}:{log_id}".encode("ascii")).decode("ascii").rstrip("=")


def decode_log_cursor(cursor: str) -> tuple[int, int]:
    """(time_ns, log_id) of a cursor; ValueError when it is not one."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        time_text, log_text = text.split(":")
        time_ns, log_id = int(time_text), int(log_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValueError(f"malformed cursor {cursor[:40]!r}") from None
    if not 0 <= log_id < 2**64:
        raise ValueError(f"malformed cursor {cursor[:40]!r}")
    return time_ns, log_id


@runtime_checkable
class LogWriter(Protocol):
    def write_logs(self, batch: LogBatch) -> "Future[None]":
        """Queue a batch of log records; the future resolves once it is durably committed.

        The same queue and commits as :meth:`SpanWriter.write_spans` (one transaction may hold
        spans and logs), with the same errors. Log records are stored as sent, duplicates
        included. ``apply_retention(cutoff_ns)`` also deletes records whose time is before the
        cutoff, except those of archived traces.
        """
        ...


@runtime_checkable
class LogReader(Protocol):
    def search_logs(self, query: LogQuery) -> LogPage:
        """Records matching ``query``, newest first; raises :class:`InvalidLogQuery` for a
        regular expression the store cannot compile."""
        ...

    def log_histogram(self, query: LogQuery, step_ns: int) -> list[LogBucket]:
        """Counts of the records matching ``query`` (``limit`` and ``cursor`` ignored) per
        ``step_ns`` bucket, buckets starting at ``query.start_ns + k * step_ns`` (at multiples
        of ``step_ns`` when there is no start). Only non-empty buckets, in time order."""
        ...

    def logs_for_trace(self, trace_id: bytes) -> list[LogRecord]:
        """Every record correlated with the trace, oldest first (time, then ``log_id``)."""
        ...


@runtime_checkable
class LogStore(Store, LogWriter, LogReader, Protocol):
    """A store that keeps logs as well as spans."""


# ---------------------------------------------------------------------------------------------
# Metric samples
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMatcher:
    """A Prometheus label matcher: ``op`` is ``=``, ``!=``, ``=~`` or ``!~``.

    As in Prometheus, a missing label matches as the empty string, and regular expressions are
    anchored at both ends (RE2 syntax; keep to the subset Python's ``re`` shares with it).
    """

    name: str
    op: str
    value: str


@dataclass(frozen=True)
class SampleQuery:
    """Samples of the series of ``metrics`` whose labels satisfy every matcher, in
    ``[start_ns, end_ns)``, combined per step ``[start_ns + k * step_ns, start_ns + (k+1) * step_ns)``
    as their kind says (see :mod:`spanlake.metrics_model`: sums of deltas, latest of the rest).
    ``exemplars`` also returns the exemplars of each step (the latest one per bucket)."""

    metrics: tuple[str, ...]
    start_ns: int
    end_ns: int
    step_ns: int
    matchers: tuple[LabelMatcher, ...] = ()
    exemplars: bool = False


@dataclass(frozen=True)
class Exemplar:
    bucket: int  # histogram bucket index, -1 for a counter or gauge
    value: float
    time_ns: int
    trace_id: str  # lowercase hex, "" when unknown
    span_id: str


@dataclass
class SampleSeries:
    """One series of a :class:`SampleQuery` result, as parallel per-step lists.

    ``times_ns[i]`` is the start of the step, ``last_ns[i]`` the time of its latest row.
    ``values`` are sums (delta kinds) or the latest value; for histograms ``values`` are the
    sums of observations, ``counts`` their counts, ``buckets`` per-bucket counts (not
    cumulative) over ``bounds``. ``start_ns`` is the start of a cumulative series at each step.
    Only steps that have rows appear. Results belong to the caller.
    """

    metric: str
    labels: dict[str, str]
    kind: str
    monotonic: bool
    times_ns: list[int] = field(default_factory=list)
    last_ns: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    start_ns: list[int] = field(default_factory=list)
    counts: list[float] | None = None
    bounds: list[list[float]] | None = None
    buckets: list[list[float]] | None = None
    exemplars: list[list[Exemplar]] | None = None


class InvalidSampleQuery(ValueError):
    """A :class:`SampleQuery` the store cannot run (bad matcher op, bad regex, bad step)."""


@runtime_checkable
class MetricWriter(Protocol):
    def write_samples(self, batch: SampleBatch) -> "Future[None]":
        """Queue metric samples; the future resolves once they are durably committed.

        Same errors as :meth:`SpanWriter.write_spans`. Rows are stored as sent: two rows of one
        series at one time both count (delta rows of several processes add up).
        """
        ...


@runtime_checkable
class MetricReader(Protocol):
    def query_samples(self, query: SampleQuery) -> list[SampleSeries]:
        """Series matching ``query``, sorted by metric then labels; raises
        :class:`InvalidSampleQuery` for a query the store cannot run."""
        ...
