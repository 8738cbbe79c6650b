"""OTLP/HTTP receiver: ``POST /v1/<signal>`` with protobuf or JSON bodies, gzip, chunked bodies.

Status codes follow the OTLP/HTTP spec: 200 (with ``partialSuccess`` when some items were
rejected), 400 for an undecodable body, 413 beyond the size limit, 415 for an unknown content
type, 429 / 503 with ``Retry-After`` when the client should retry. Error bodies are a
``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import json
import zlib
from typing import Sequence

from google.protobuf import json_format
from google.rpc import status_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spanlake.collector.ingest import RETRY_AFTER_S, ExportFailure, FailureKind
from spanlake.collector.signals import Signal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_HTTP_STATUS = {
    FailureKind.INVALID: 400,
    FailureKind.TOO_LARGE: 413,
    FailureKind.EXHAUSTED: 429,
    FailureKind.UNAVAILABLE: 503,
    FailureKind.INTERNAL: 500,
}
_GRPC_CODE = {400: 3, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


class _TooLarge(Exception):
    pass


def _error(status: int, message: str, content_type: str) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else None
    st = status_pb2.Status(code=_GRPC_CODE.get(status, 2), message=message)
    if content_type == PROTOBUF:
        return Response(st.SerializeToString(), status, headers=headers, media_type=PROTOBUF)
    body = json.dumps({"code": st.code, "message": message})
    return Response(body, status, headers=headers, media_type=JSON)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # works with and without Content-Length (chunked)
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise ValueError(f"body is not valid gzip: {e}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise _TooLarge()
    if not d.eof:
        raise ValueError("body is not valid gzip: truncated stream")
    return out


def _export_endpoint(signal: Signal, limit: int):
    async def endpoint(request: Request) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        reply_type = PROTOBUF if ctype == PROTOBUF else JSON
        if ctype not in (PROTOBUF, JSON):
            return _error(415, f"unsupported Content-Type {ctype or '(none)'!r}: use {PROTOBUF} or {JSON}", JSON)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", ""):
            return _error(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none", reply_type)
        try:
            body = await _read_body(request, limit)
            if encoding == "gzip":
                body = _gunzip(body, limit)
        except _TooLarge:
            return _error(413, f"request body exceeds the limit of {limit} bytes", reply_type)
        except ValueError as e:
            return _error(400, str(e), reply_type)
        decode = signal.decode_protobuf if ctype == PROTOBUF else signal.decode_json
        try:
            result = await signal.ingest.export("http", lambda: decode(body))
        except ExportFailure as f:
            return _error(_HTTP_STATUS[f.kind], f.message, reply_type)
        response = signal.response(result.rejected, result.message)
        if reply_type == PROTOBUF:
            return Response(response.SerializeToString(), 200, media_type=PROTOBUF)
        return Response(json_format.MessageToJson(response, indent=None), 200, media_type=JSON)

    return endpoint


def create_otlp_http_app(signals: Sequence[Signal], max_message_bytes: int) -> Starlette:
    """The ASGI app of the OTLP/HTTP port."""
    routes = [Route(s.http_path, _export_endpoint(s, max_message_bytes), methods=["POST"]) for s in signals]
    return Starlette(routes=routes)
