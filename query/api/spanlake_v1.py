"""Spanlake's own API at ``/api/spanlake/v1``: what the web UI (and scripts) build on.

Routes, by module:

* here: ``/services``, ``/services/{service}/operations``;
* :mod:`.spanlake_v1_traces`: ``/traces`` (search, summaries), ``/traces/{id}`` (compact analysed
  view), ``/traces/{id}/analysis``, ``/traces/{id}/spans/{spanId}``, ``/traces/{id}/search``,
  ``/traces/{id}/export``;
* :mod:`.spanlake_v1_compare`: ``/compare``;
* :mod:`.spanlake_v1_stats`: ``/latency``, ``/services/{service}/operations/stats``,
  ``/attributes/differences``, ``/dependencies``.

Errors are FastAPI's ``{"detail": ...}`` with status 400 (bad parameter; 422 when a typed
parameter does not parse), 404 (unknown trace or span) or 500.
"""

from __future__ import annotations

from fastapi import APIRouter

from spanlake.model import SPAN_KIND_NAMES
from spanlake.query.api import params
from spanlake.query.api.deps import QueryServiceDep

from . import spanlake_v1_compare, spanlake_v1_stats, spanlake_v1_traces
from . import spanlake_v1_models as m
from .spanlake_v1_params import SpanKindParam, parse

router = APIRouter(prefix="/api/spanlake/v1", tags=["spanlake"])


@router.get("/services", response_model=m.ServiceList, summary="Every service that sent spans")
def services(svc: QueryServiceDep) -> dict:
    return {"services": svc.get_services()}


@router.get("/services/{service}/operations", response_model=m.OperationList, summary="Operations of a service")
def operations(service: str, svc: QueryServiceDep, spanKind: SpanKindParam = None) -> dict:
    kind = parse(params.span_kind, spanKind)
    return {"operations": [{"name": op.name, "spanKind": SPAN_KIND_NAMES.get(op.span_kind, str(op.span_kind))}
                           for op in svc.get_operations(service, kind)]}


router.include_router(spanlake_v1_traces.router)
router.include_router(spanlake_v1_compare.router)
router.include_router(spanlake_v1_stats.router)
