"""The OTLP signals a receiver serves: their gRPC service, HTTP path, decoders and responses.

Each :class:`Signal` ties one OTLP signal to the functions both receivers need, so the gRPC and
HTTP servers stay generic. Decoders raise ``ValueError`` (``DecodeError``) for an undecodable
request and report per-item rejections through :class:`~spanlake.collector.ingest.Decoded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from spanlake.collector.ingest import Decoded, Ingest


@dataclass(frozen=True)
class Signal:
    name: str  # traces, logs, metrics
    grpc_service: str  # fully qualified gRPC service name
    http_path: str  # OTLP/HTTP path
    decode_protobuf: Callable[[bytes], Decoded]
    decode_json: Callable[[bytes], Decoded]
    response: Callable[[int, str], Message]  # (rejected, message) -> Export*ServiceResponse
    ingest: Ingest


def _decode_traces_protobuf(data: bytes) -> Decoded:
    from spanlake.collector.decode_traces import decode_export_trace_request

    r = decode_export_trace_request(data)
    return Decoded(r.batch, r.batch.num_spans, r.rejected_spans, r.error_message)


def _decode_traces_json(data: bytes) -> Decoded:
    from spanlake.collector.decode_traces import decode_export_trace_request
    from spanlake.collector.otlp_json import parse_traces_json

    parsed = parse_traces_json(data)
    r = decode_export_trace_request(parsed if isinstance(parsed, (bytes, bytearray)) else parsed.SerializeToString())
    return Decoded(r.batch, r.batch.num_spans, r.rejected_spans, r.error_message)


def _traces_response(rejected: int, message: str) -> Message:
    resp = trace_service_pb2.ExportTraceServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_spans = rejected
        resp.partial_success.error_message = message
    return resp


def traces_signal(ingest: Ingest) -> Signal:
    return Signal(
        name="traces",
        grpc_service="opentelemetry.proto.collector.trace.v1.TraceService",
        http_path="/v1/traces",
        decode_protobuf=_decode_traces_protobuf,
        decode_json=_decode_traces_json,
        response=_traces_response,
        ingest=ingest,
    )
