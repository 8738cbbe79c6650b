"""``create_app``: the query process's HTTP app (APIs, health, metrics, UI) over one store.

Everything the routes need is passed in and kept on ``app.state``; nothing is read at import
time. The UI is mounted last so API routes always win.
"""

from __future__ import annotations

import threading

from fastapi import FastAPI

from spanlake import telemetry
from spanlake.config import Config
from spanlake.query.api import health
from spanlake.storage.api import Store


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
    app.include_router(health.router)
    return app
