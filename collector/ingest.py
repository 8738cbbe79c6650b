"""Protocol-independent export handling: decode, hand to the store, wait for the commit.

Both receivers (gRPC and HTTP) call :meth:`Ingest.export` and translate its result or its
:class:`ExportFailure` into their own status codes, so every protocol gets the same semantics:
the response is sent only after the accepted items are committed; invalid items are reported
as partial success while the valid ones are stored; a full queue asks the client to retry.
Each signal counts its items under its own counters (``telemetry.RECEIVER_COUNTERS``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from spanlake import telemetry
from spanlake.storage.api import SpanWriter, StoreClosed, StoreError, WriteQueueFull

log = logging.getLogger("spanlake.collector")

#: Seconds a client is asked to wait before retrying when the write queue is full.
RETRY_AFTER_S = 1


class FailureKind(enum.Enum):
    INVALID = "invalid"  # do not retry: 400 / INVALID_ARGUMENT
    TOO_LARGE = "too_large"  # 413 / RESOURCE_EXHAUSTED
    EXHAUSTED = "queue_full"  # retry later: 429 / RESOURCE_EXHAUSTED
    UNAVAILABLE = "unavailable"  # retry later: 503 / UNAVAILABLE (shutting down)
    INTERNAL = "store_error"  # 500 / INTERNAL


class ExportFailure(Exception):
    """The whole request failed; ``kind`` decides the status code, ``message`` names the cause."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ExportResult:
    accepted: int
    rejected: int
    message: str  # partial-success message, "" when everything was accepted


B = TypeVar("B")


@dataclass
class Decoded(Generic[B]):
    """What a signal's decoder returns: a batch for the store plus what it refused."""

    batch: B
    count: int
    rejected: int
    message: str


class Ingest:
    """Runs exports of one signal against one store writer."""

    def __init__(self, signal: str, submit: Callable[[object], "asyncio.Future[None] | object"]) -> None:
        self.signal = signal
        self._submit = submit
        self._counters = telemetry.RECEIVER_COUNTERS[signal]

    async def export(self, protocol: str, decode: Callable[[], Decoded]) -> ExportResult:
        started = time.perf_counter()
        try:
            result = await self._export(protocol, decode)
        except ExportFailure as failure:
            telemetry.REQUESTS.labels(protocol, self.signal, failure.kind.value).inc()
            if failure.kind is not FailureKind.EXHAUSTED:
                log.warning("export rejected", extra={"signal": self.signal, "protocol": protocol,
                                                      "reason": failure.kind.value, "detail": failure.message})
            raise
        finally:
            telemetry.REQUEST_SECONDS.labels(protocol).observe(time.perf_counter() - started)
        telemetry.REQUESTS.labels(protocol, self.signal, "partial" if result.rejected else "ok").inc()
        if result.rejected:
            log.info("export partially rejected", extra={"signal": self.signal, "protocol": protocol,
                                                         "rejected": result.rejected, "detail": result.message})
        return result

    async def _export(self, protocol: str, decode: Callable[[], Decoded]) -> ExportResult:
        try:
            decoded = decode()
        except ValueError as e:
            self._counters.rejected.labels(protocol, "undecodable").inc()
            raise ExportFailure(FailureKind.INVALID, str(e)) from None
        self._counters.received.labels(protocol).inc(decoded.count + decoded.rejected)
        if decoded.rejected:
            self._counters.rejected.labels(protocol, "invalid").inc(decoded.rejected)
        if decoded.count == 0:
            return ExportResult(0, decoded.rejected, decoded.message)
        try:
            future = self._submit(decoded.batch)
        except WriteQueueFull:
            self._count_rejected(protocol, "queue_full", decoded.count)
            raise ExportFailure(FailureKind.EXHAUSTED, "write queue is full; retry later") from None
        except StoreClosed:
            self._count_rejected(protocol, "unavailable", decoded.count)
            raise ExportFailure(FailureKind.UNAVAILABLE, "server is shutting down; retry later") from None
        try:
            await asyncio.wrap_future(future)  # type: ignore[arg-type]
        except StoreClosed:
            self._count_rejected(protocol, "unavailable", decoded.count)
            raise ExportFailure(FailureKind.UNAVAILABLE, "server is shutting down; retry later") from None
        except StoreError as e:
            self._count_rejected(protocol, "store_error", decoded.count)
            log.error("commit failed", extra={"signal": self.signal, "error": str(e)})
            raise ExportFailure(FailureKind.INTERNAL, f"storage error: {e}") from None
        self._counters.accepted.labels(protocol).inc(decoded.count)
        return ExportResult(decoded.count, decoded.rejected, decoded.message)

    def _count_rejected(self, protocol: str, reason: str, n: int) -> None:
        self._counters.rejected.labels(protocol, reason).inc(n)


def span_ingest(writer: SpanWriter) -> Ingest:
    return Ingest("traces", writer.write_spans)  # type: ignore[arg-type]
