"""``create_app``: the query process's HTTP app (APIs, health, metrics, UI) over one store.

Everything the routes need is passed in and kept on ``app.state``; nothing is read at import
time. The UI is mounted last so API routes always win.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI, Request

from spanlake import telemetry
from spanlake.config import Config
from spanlake.config import parse_duration_ns
from spanlake.query.api import health, jaeger_legacy, jaeger_v3, spanlake_v1
from spanlake.query.api import logs as logs_api
from spanlake.query.api import metrics_jaeger, series
from spanlake.query.api.metrics_exposition import DerivedSeriesCollector
from spanlake.query.metric_totals import DerivedTotals
from spanlake.query.service import QueryService
from spanlake.storage.api import Store
from spanlake.ui.mount import mount_ui


def create_app(config: Config, store: Store, readiness: threading.Event | None = None) -> FastAPI:
    """Build the app. ``readiness`` is set by the server once every listener is up."""
    app = FastAPI(
        title="Spanlake",
        description="Query API of Spanlake: Jaeger-compatible (/api, /api/v3), Tempo-compatible (/tempo) and Spanlake's own (/api/spanlake/v1).",
        version="0.1.0",
    )
    app.state.config = config
    app.state.store = store
    if readiness is None:
        readiness = threading.Event()
        readiness.set()
    app.state.readiness = readiness
    app.state.metrics_registry = telemetry.build_registry(store.stats)
    app.state.query_service = QueryService(store, parse_duration_ns(config.query.max_clock_skew_adjustment))
    app.state.metrics_registry.register(DerivedSeriesCollector(DerivedTotals(app.state.query_service.query_samples)))
    app.include_router(health.router)
    app.include_router(jaeger_v3.router)  # before /api: /api/v3/... must not match /api/{...}
    app.include_router(jaeger_legacy.router)
    app.include_router(spanlake_v1.router)
    app.include_router(logs_api.router)
    app.include_router(metrics_jaeger.router)
    app.include_router(series.router)

    @app.exception_handler(jaeger_legacy.JaegerAPIError)
    async def _jaeger_error(request: Request, exc: jaeger_legacy.JaegerAPIError):
        return jaeger_legacy.error_response(request, exc)

    @app.exception_handler(jaeger_v3.V3APIError)
    async def _v3_error(request: Request, exc: jaeger_v3.V3APIError):
        return jaeger_v3.error_response(exc)
    mount_ui(app)  # last: after every router
    return app
