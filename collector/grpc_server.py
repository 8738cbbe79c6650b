"""OTLP/gRPC receiver: ``<Signal>Service/Export`` for every configured signal on one port.

Requests are taken as raw bytes (no deserializer) so the decoder parses them exactly once.
gzip is handled by gRPC itself; ``max_message_bytes`` caps the decompressed size and gRPC answers
RESOURCE_EXHAUSTED beyond it. A full write queue answers RESOURCE_EXHAUSTED with a RetryInfo
detail, which the OTel SDKs treat as "retry after the given delay".
"""

from __future__ import annotations

import logging
from typing import Sequence

import grpc
from google.protobuf import duration_pb2
from google.protobuf.any_pb2 import Any as AnyProto
from google.rpc import error_details_pb2, status_pb2

from spanlake.collector.ingest import RETRY_AFTER_S, ExportFailure, FailureKind
from spanlake.collector.signals import Signal

log = logging.getLogger("spanlake.collector.grpc")

_STATUS = {
    FailureKind.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    FailureKind.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    FailureKind.EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    FailureKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    FailureKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def _retry_metadata(code: grpc.StatusCode, message: str) -> tuple[tuple[str, bytes], ...]:
    detail = AnyProto()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=RETRY_AFTER_S)))
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


def _export_handler(signal: Signal) -> grpc.RpcMethodHandler:
    async def export(request: bytes, context: grpc.aio.ServicerContext):
        try:
            result = await signal.ingest.export("grpc", lambda: signal.decode_protobuf(request))
        except ExportFailure as f:
            code = _STATUS[f.kind]
            if f.kind in (FailureKind.EXHAUSTED, FailureKind.UNAVAILABLE):
                await context.abort(code, f.message, trailing_metadata=_retry_metadata(code, f.message))
            await context.abort(code, f.message)
        return signal.response(result.rejected, result.message)

    return grpc.unary_unary_rpc_method_handler(
        export, request_deserializer=None, response_serializer=lambda m: m.SerializeToString()
    )


async def start_grpc_receiver(
    host: str, port: int, signals: Sequence[Signal], max_message_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """Start the OTLP/gRPC server; returns it and the port it actually listens on."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 1),
        ],
        maximum_concurrent_rpcs=None,
    )
    for signal in signals:
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(signal.grpc_service, {"Export": _export_handler(signal)}),)
        )
    bound = server.add_insecure_port(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")
    await server.start()
    return server, bound
