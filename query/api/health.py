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
    """Spanlake's own metrics and the derived series: OpenMetrics (with exemplars) when the
    scraper accepts it, otherwise the Prometheus text format 0.0.4 (no exemplars)."""
    registry = request.app.state.metrics_registry
    if "application/openmetrics-text" in request.headers.get("accept", ""):
        from prometheus_client.openmetrics import exposition as openmetrics

        return Response(openmetrics.generate_latest(registry), media_type=openmetrics.CONTENT_TYPE_LATEST)
    body = telemetry.render(registry)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
