"""A full write queue makes both receivers ask the client to retry, and nothing is half-stored."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from spanlake.collector.grpc_server import start_grpc_receiver
from spanlake.collector.http_server import create_otlp_http_app
from spanlake.collector.ingest import span_ingest
from spanlake.collector.signals import traces_signal
from spanlake.storage.api import StoreClosed, WriteQueueFull
from tests.e2e.otlp_builders import make_request, make_span


class RefusingWriter:
    """A writer whose queue is always full (or closed): the receivers' view of an overloaded store."""

    def __init__(self, error: type[Exception]) -> None:
        self.error = error
        self.calls = 0

    def write_spans(self, batch) -> Future:
        self.calls += 1
        raise self.error("full")


@pytest.mark.parametrize("error,status", [(WriteQueueFull, 429), (StoreClosed, 503)])
def test_http_asks_to_retry(error, status) -> None:
    writer = RefusingWriter(error)
    app = create_otlp_http_app([traces_signal(span_ingest(writer))], 1 << 20)

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post("/v1/traces", content=make_request("s", [make_span()]).SerializeToString(),
                                     headers={"Content-Type": "application/x-protobuf"})

    r = asyncio.run(go())
    assert r.status_code == status
    assert r.headers["Retry-After"] == "1"
    assert "retry" in status_pb2.Status.FromString(r.content).message
    assert writer.calls == 1


def test_grpc_resource_exhausted_carries_retry_info() -> None:
    writer = RefusingWriter(WriteQueueFull)

    async def go():
        server, port = await start_grpc_receiver("127.0.0.1", 0, [traces_signal(span_ingest(writer))], 1 << 20)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await trace_service_pb2_grpc.TraceServiceStub(ch).Export(make_request("s", [make_span()]))
                return err.value
        finally:
            await server.stop(None)

    err = asyncio.run(go())
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(err.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and info.retry_delay.seconds == 1


def test_empty_request_is_ok_and_writes_nothing() -> None:
    writer = RefusingWriter(WriteQueueFull)
    app = create_otlp_http_app([traces_signal(span_ingest(writer))], 1 << 20)

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post("/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"})

    assert asyncio.run(go()).status_code == 200
    assert writer.calls == 0
