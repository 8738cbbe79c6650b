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

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from spanlake.model import Span, SpanBatch


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
