"""The OTLP signals a receiver serves: their gRPC service, HTTP path, decoders and responses.

Each :class:`Signal` ties one OTLP signal to the functions both receivers need, so the gRPC and
HTTP servers stay generic. Decoders raise ``ValueError`` (``DecodeError``) for an undecodable
request and report per-item rejections through :class:`~spanlake.collector.ingest.Decoded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from spanlake.collector.ingest import Decoded, Ingest
from spanlake.storage.api import LogWriter, MetricWriter


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
    from spanlake.collector.otlp_json import decode_traces_json

    r = decode_traces_json(data)
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


def _decode_logs_protobuf(data: bytes) -> Decoded:
    from spanlake.collector.decode_logs import decode_logs_protobuf

    r = decode_logs_protobuf(data)
    return Decoded(r.batch, r.batch.num_logs, r.rejected, r.error_message)


def _decode_logs_json(data: bytes) -> Decoded:
    from spanlake.collector.decode_logs import decode_logs_json

    r = decode_logs_json(data)
    return Decoded(r.batch, r.batch.num_logs, r.rejected, r.error_message)


def _logs_response(rejected: int, message: str) -> Message:
    resp = logs_service_pb2.ExportLogsServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_log_records = rejected
        resp.partial_success.error_message = message
    return resp


def log_ingest(writer: LogWriter) -> Ingest:
    """Exports of the logs signal into ``writer`` (the same commits as spans)."""
    return Ingest("logs", writer.write_logs)  # type: ignore[arg-type]


def logs_signal(ingest: Ingest) -> Signal:
    return Signal(
        name="logs",
        grpc_service="opentelemetry.proto.collector.logs.v1.LogsService",
        http_path="/v1/logs",
        decode_protobuf=_decode_logs_protobuf,
        decode_json=_decode_logs_json,
        response=_logs_response,
        ingest=ingest,
    )


def _decode_metrics_protobuf(data: bytes) -> Decoded:
    from spanlake.collector.decode_metrics import decode_metrics_protobuf

    r = decode_metrics_protobuf(data)
    return Decoded(r.batch, r.accepted, r.rejected, r.error_message)


def _decode_metrics_json(data: bytes) -> Decoded:
    from spanlake.collector.decode_metrics import decode_metrics_json

    r = decode_metrics_json(data)
    return Decoded(r.batch, r.accepted, r.rejected, r.error_message)


def _metrics_response(rejected: int, message: str) -> Message:
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

    resp = metrics_service_pb2.ExportMetricsServiceResponse()
    if rejected or message:
        resp.partial_success.rejected_data_points = rejected
        resp.partial_success.error_message = message
    return resp


def metric_ingest(writer: MetricWriter) -> Ingest:
    """Exports of the metrics signal into ``writer`` (samples, committed by the store)."""
    return Ingest("metrics", writer.write_samples)  # type: ignore[arg-type]


def metrics_signal(ingest: Ingest) -> Signal:
    return Signal(
        name="metrics",
        grpc_service="opentelemetry.proto.collector.metrics.v1.MetricsService",
        http_path="/v1/metrics",
        decode_protobuf=_decode_metrics_protobuf,
        decode_json=_decode_metrics_json,
        response=_metrics_response,
        ingest=ingest,
    )
