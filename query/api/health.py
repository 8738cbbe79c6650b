"""``/healthz`` (process alive), ``/readyz`` (listeners up and store open) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from spanlake import telemetry

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    ready = request.app.state.readiness
    if ready.is_set():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "starting"}, status_code=503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    body = telemetry.render(request.app.state.metrics_registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
