"""Jaeger's api_v3 ``QueryService`` over gRPC (``--query-grpc``, default ``0.0.0.0:16685``).

The semantics follow Jaeger's own handler (``jaegerquery/internal/apiv3/grpc_handler.go``):

* ``GetTrace`` streams the trace as ``TracesData`` chunks. An unknown trace ends in NOT_FOUND
  with the message ``trace not found``, which Jaeger's api_v3 client reads as "no trace".
* ``FindTraces`` streams one ``TracesData`` per trace and ``FindTraceSummaries`` chunks of
  summaries. No match is an empty stream with OK, as in Jaeger (only its HTTP gateway turns
  that into a 404).
* Operation kinds are Jaeger's storage strings: ``server``, ``client``... and ``""`` for an
  unspecified kind (unlike the HTTP gateway, the gRPC handler does not rewrite it).
* A bad argument is INVALID_ARGUMENT with a message naming the field; a failing store is
  INTERNAL and a closed one UNAVAILABLE.

Jaeger's Go clients always send their (non-nullable) timestamps and durations, so Go's zero time
and a zero duration mean "not given", as they do in Jaeger. Everything here goes through
:class:`~spanlake.query.service.QueryService`; its calls block, so they run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import grpc
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.trace.v1 import trace_pb2

from spanlake.model import SPAN_KIND_NAMES, SPAN_KIND_NUMBERS, Span
from spanlake.otlp_encode import spans_to_traces_data
from spanlake.protos import query_service_pb2 as pb
from spanlake.protos import query_service_pb2_grpc as pb_grpc
from spanlake.query.service import QueryService
from spanlake.storage.api import StoreClosed, StoreError, TraceQuery, TraceSummary

log = logging.getLogger("spanlake.query.grpc")

T = TypeVar("T")

DEFAULT_SEARCH_DEPTH = 100
# Below the 4 MiB that gRPC clients (Jaeger's included) accept per message by default.
MAX_CHUNK_BYTES = 3 * 1024 * 1024
SUMMARIES_PER_CHUNK = 100
_GO_ZERO_TIME_SECONDS = -62135596800  # 0001-01-01T00:00:00Z, Go's time.Time{}
_FILTER_FIELD = 10  # TraceQueryParameters.filter, reserved in our .proto


class InvalidArgument(ValueError):
    """A request field is missing or malformed; the message names the field."""


def parse_trace_id(text: str) -> bytes:
    """Jaeger's ``TraceIDFromString``: 1 to 32 hex digits, left-padded to 128 bits."""
    if not text or len(text) > 32:
        raise InvalidArgument(f"malformed trace_id {text!r}: expected 1 to 32 hex digits")
    try:
        return bytes.fromhex(text.rjust(32, "0"))
    except ValueError:
        raise InvalidArgument(f"malformed trace_id {text!r}: expected 1 to 32 hex digits") from None


def timestamp_ns(msg: Any, name: str) -> int | None:
    """``msg.<name>`` (a Timestamp) in ns since the epoch; None when unset or Go's zero time."""
    if not msg.HasField(name):
        return None
    ts: timestamp_pb2.Timestamp = getattr(msg, name)
    if ts.seconds == _GO_ZERO_TIME_SECONDS and ts.nanos == 0:
        return None
    if not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument(f"malformed {name}: nanos {ts.nanos} out of range")
    return ts.seconds * 1_000_000_000 + ts.nanos


def duration_ns(msg: Any, name: str) -> int | None:
    """``msg.<name>`` (a Duration) in ns; None when unset or zero."""
    if not msg.HasField(name):
        return None
    d: duration_pb2.Duration = getattr(msg, name)
    if not -1_000_000_000 < d.nanos < 1_000_000_000:
        raise InvalidArgument(f"malformed {name}: nanos {d.nanos} out of range")
    ns = d.seconds * 1_000_000_000 + d.nanos
    if ns < 0:
        raise InvalidArgument(f"{name} must not be negative")
    return ns or None


def trace_query(request: Any) -> TraceQuery:
    """The ``query`` of a FindTraces/FindTraceSummaries request as a :class:`TraceQuery`."""
    if not request.HasField("query"):
        raise InvalidArgument("missing query")
    q: pb.TraceQueryParameters = request.query
    if any(f.field_number == _FILTER_FIELD for f in UnknownFieldSet(q)):
        raise InvalidArgument("filter: the structured query filter is not supported")
    start_min = timestamp_ns(q, "start_time_min")
    start_max = timestamp_ns(q, "start_time_max")
    for value, name in ((start_min, "start_time_min"), (start_max, "start_time_max")):
        if value is None:
            raise InvalidArgument(f"missing {name}: start time min and max are required parameters")
    if start_max <= start_min:
        raise InvalidArgument("start_time_max must be after start_time_min")
    dmin, dmax = duration_ns(q, "duration_min"), duration_ns(q, "duration_max")
    if dmin is not None and dmax is not None and dmax < dmin:
        raise InvalidArgument("duration_max must not be less than duration_min")
    if q.search_depth < 0:
        raise InvalidArgument("search_depth must not be negative")
    return TraceQuery(
        service_name=q.service_name or None,
        operation_name=q.operation_name or None,
        attributes=tuple(sorted(q.attributes.items())),
        start_min_ns=start_min,
        start_max_ns=start_max,
        duration_min_ns=dmin,
        duration_max_ns=dmax,
        limit=q.search_depth or DEFAULT_SEARCH_DEPTH,
    )


def span_kind_number(text: str) -> int | None:
    """``server``/``SPAN_KIND_SERVER``... (any case) -> OTLP kind number; ``""`` -> None (any)."""
    if not text:
        return None
    kind = SPAN_KIND_NUMBERS.get(text.lower().removeprefix("span_kind_"))
    if kind is None:
        raise InvalidArgument(f"unknown span_kind {text!r} (server, client, producer, consumer, internal)")
    return kind


def span_kind_string(kind: int) -> str:
    """Jaeger's ``SpanKindToString``: lowercase name, ``""`` for unspecified."""
    return "" if kind == 0 else SPAN_KIND_NAMES.get(kind, "")


def traces_data_chunks(spans: list[Span], max_bytes: int | None = None) -> Iterator[trace_pb2.TracesData]:
    """Spans as TracesData messages of at most ``max_bytes`` (default :data:`MAX_CHUNK_BYTES`)
    each, in order; a single span larger than that still goes out alone."""
    if not spans:
        return
    max_bytes = MAX_CHUNK_BYTES if max_bytes is None else max_bytes
    data = spans_to_traces_data(spans)
    if len(spans) == 1 or data.ByteSize() <= max_bytes:
        yield data
        return
    half = len(spans) // 2
    yield from traces_data_chunks(spans[:half], max_bytes)
    yield from traces_data_chunks(spans[half:], max_bytes)


def summary_proto(s: TraceSummary) -> pb.TraceSummary:
    # The summary index has no orphan count, so orphan_span_count stays 0 (as on Jaeger's
    # Elasticsearch backend).
    return pb.TraceSummary(
        trace_id=s.trace_id.hex(),
        root_service_name=s.root_service_name,
        root_operation_name=s.root_span_name,
        min_start_time_unix_nano=s.start_ns,
        max_end_time_unix_nano=s.end_ns,
        span_count=s.span_count,
        error_span_count=s.error_span_count,
        services=[pb.ServiceSummary(name=x.name, span_count=x.span_count, error_span_count=x.error_span_count)
                  for x in sorted(s.services, key=lambda x: x.name)],
    )


class QueryServicer(pb_grpc.QueryServiceServicer):
    """``jaeger.api_v3.QueryService`` over a :class:`QueryService`."""

    def __init__(self, service: QueryService) -> None:
        self.service = service

    async def _run(self, context: grpc.aio.ServicerContext, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except StoreClosed as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e) or "the store is closed")
        except StoreError as e:
            log.exception("query failed")
            await context.abort(grpc.StatusCode.INTERNAL, f"storage error: {e}")
        raise AssertionError("unreachable")  # context.abort always raises

    async def _parse(self, context: grpc.aio.ServicerContext, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except InvalidArgument as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        raise AssertionError("unreachable")

    async def GetTrace(self, request: pb.GetTraceRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[trace_pb2.TracesData]:
        def parse() -> tuple[bytes, int | None, int | None]:
            tid = parse_trace_id(request.trace_id)
            start, end = timestamp_ns(request, "start_time"), timestamp_ns(request, "end_time")
            if start is not None and end is not None and end < start:
                raise InvalidArgument("end_time must not be before start_time")
            return tid, start, end

        tid, start, end = await self._parse(context, parse)
        result = await self._run(context, self.service.get_trace, tid, start, end, request.raw_traces)
        if result is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "trace not found")
        for chunk in await asyncio.to_thread(list, traces_data_chunks(result.spans)):
            yield chunk

    async def FindTraces(self, request: pb.FindTracesRequest,
                         context: grpc.aio.ServicerContext) -> AsyncIterator[trace_pb2.TracesData]:
        query = await self._parse(context, trace_query, request)
        results = await self._run(context, self.service.find_traces, query, request.query.raw_traces)
        for result in results:
            for chunk in await asyncio.to_thread(list, traces_data_chunks(result.spans)):
                yield chunk

    async def FindTraceSummaries(self, request: pb.FindTraceSummariesRequest,
                                 context: grpc.aio.ServicerContext) -> AsyncIterator[pb.FindTraceSummariesResponse]:
        query = await self._parse(context, trace_query, request)
        summaries = await self._run(context, self.service.find_trace_summaries, query)
        for i in range(0, len(summaries), SUMMARIES_PER_CHUNK):
            chunk = summaries[i:i + SUMMARIES_PER_CHUNK]
            yield pb.FindTraceSummariesResponse(summaries=[summary_proto(s) for s in chunk])

    async def GetServices(self, request: pb.GetServicesRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetServicesResponse:
        return pb.GetServicesResponse(services=await self._run(context, self.service.get_services))

    async def GetOperations(self, request: pb.GetOperationsRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetOperationsResponse:
        def parse() -> int | None:
            if not request.service:
                raise InvalidArgument("missing service")
            return span_kind_number(request.span_kind)

        kind = await self._parse(context, parse)
        ops = await self._run(context, self.service.get_operations, request.service, kind)
        return pb.GetOperationsResponse(
            operations=[pb.Operation(name=op.name, span_kind=span_kind_string(op.span_kind)) for op in ops]
        )

    async def GetDependencies(self, request: pb.GetDependenciesRequest,
                              context: grpc.aio.ServicerContext) -> pb.DependenciesResponse:
        def parse() -> tuple[int, int]:
            start, end = timestamp_ns(request, "start_time"), timestamp_ns(request, "end_time")
            if start is None:
                raise InvalidArgument("missing start_time: start_time and end_time are required")
            if end is None:
                raise InvalidArgument("missing end_time: start_time and end_time are required")
            if end <= start:
                raise InvalidArgument("end_time must be after start_time")
            return start, end

        start, end = await self._parse(context, parse)
        links = await self._run(context, self.service.get_dependencies, start, end)
        return pb.DependenciesResponse(
            dependencies=[pb.Dependency(parent=d.parent, child=d.child, call_count=d.call_count) for d in links]
        )


async def start_query_grpc(host: str, port: int, service: QueryService) -> tuple[grpc.aio.Server, int]:
    """Start the api_v3 gRPC server; returns it and the port it actually listens on.

    Call ``await server.stop(grace)`` to shut it down.
    """
    # No SO_REUSEPORT: a second server on the same port must fail, not share the traffic.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_QueryServiceServicer_to_server(QueryServicer(service), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # newer grpcio raises where older ones returned 0
        bound = 0
    if bound == 0:
        raise OSError(f"cannot listen for the gRPC query API on {address}")
    await server.start()
    return server, bound
