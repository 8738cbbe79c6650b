"""``GET /api/spanlake/v1/compare``: two traces matched span by span.

The differences come from :func:`~spanlake.query.analysis.compare.compare_traces`; the merged
tree (``rows``) lays both traces out by matching path so a UI can show them side by side.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from spanlake.query.analysis.compare import PathStep, compare_traces, span_paths
from spanlake.query.api.deps import QueryServiceDep

from . import spanlake_v1_models as m
from .spanlake_v1_http import json_response
from .spanlake_v1_trace_json import hex_span_id, hex_trace_id
from .spanlake_v1_traces import TraceCacheDep, get_loaded
from .spanlake_v1_traces_cache import LoadedTrace

router = APIRouter()

#: Merged trees are spelled out path by path (cost grows with depth); beyond this many spans in
#: either trace only the differences are returned.
MAX_TREE_SPANS = 20_000


def _path(steps: tuple[PathStep, ...]) -> list[dict[str, Any]]:
    return [{"service": s, "operation": o, "occurrence": n} for s, o, n in steps]


def _info(t: LoadedTrace) -> dict[str, Any]:
    a = t.analysis
    return {"traceId": hex_trace_id(t.result.trace_id), "startNs": a.start_ns, "durationNs": a.duration_ns,
            "spanCount": a.span_count, "errorCount": a.error_count, "rootService": a.root_service,
            "rootOperation": a.root_operation}


def _side(t: LoadedTrace, i: int) -> dict[str, Any]:
    s = t.spans[i]
    return {"spanId": hex_span_id(s.span_id), "startNs": s.start_ns - t.analysis.start_ns,
            "durationNs": s.duration_ns, "selfNs": t.analysis.self_ns[i]}


def merged_rows(a: LoadedTrace, b: LoadedTrace, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Union of both trees by path, depth-first (A's order first, then what only B has)."""
    paths_a, paths_b = span_paths(a.tree), span_paths(b.tree)
    b_by_path: dict[tuple, list[int]] = {}
    for j in b.rows:
        b_by_path.setdefault(paths_b[j], []).append(j)
    children: dict[tuple, list[tuple]] = {(): []}
    entries: dict[tuple, list[tuple[int | None, int | None]]] = {}

    def add(path: tuple, pair: tuple[int | None, int | None]) -> None:
        if path not in entries:
            entries[path] = []
            children.setdefault(path[:-1], []).append(path)
        entries[path].append(pair)

    for i in a.rows:
        js = b_by_path.get(paths_a[i])
        add(paths_a[i], (i, js.pop(0) if js else None))
    for path, js in b_by_path.items():
        for j in js:
            add(path, (None, j))

    rows: list[dict[str, Any]] = []
    stack = list(reversed(children[()]))
    while stack:
        path = stack.pop()
        service, operation, _ = path[-1]
        for ia, ib in entries[path]:
            if len(rows) >= limit:
                return rows, True
            rows.append({"depth": len(path) - 1, "service": service, "operation": operation,
                         "a": _side(a, ia) if ia is not None else None,
                         "b": _side(b, ib) if ib is not None else None})
        stack.extend(reversed(children.get(path, [])))
    return rows, False


@router.get("/compare", response_model=m.CompareResult, summary="Compare two traces span by span")
def compare(
    request: Request,
    svc: QueryServiceDep,
    cache: TraceCacheDep,
    a: Annotated[str, Query(description="Trace id of the baseline.")],
    b: Annotated[str, Query(description="Trace id compared with the baseline.")],
    minChange: Annotated[int, Query(ge=1, description="Smallest change in ns reported as changed.")] = 1,
    rowLimit: Annotated[int, Query(ge=0, le=100_000, description="Most rows of the merged tree.")] = 5000,
) -> Response:
    """Spans only in A, only in B, and matched spans whose duration or self time changed.

    Spans match by their path of (service, operation, occurrence) from the root; changes are
    sorted by impact (the change in self time, then in duration).
    """
    ta, tb = get_loaded(svc, cache, a, fresh=True), get_loaded(svc, cache, b, fresh=True)
    cmp = compare_traces(ta.tree, tb.tree, min_change_ns=minChange)
    if max(len(ta.spans), len(tb.spans)) <= MAX_TREE_SPANS:
        rows, truncated = merged_rows(ta, tb, rowLimit)
    else:
        rows, truncated = [], True
    doc = {
        "a": _info(ta),
        "b": _info(tb),
        "matched": cmp.matched,
        "durationDeltaNs": cmp.duration_delta_ns,
        "onlyInA": [{"path": _path(x.path), "spanId": hex_span_id(ta.spans[x.index].span_id),
                     "durationNs": x.duration_ns, "selfNs": x.self_ns} for x in cmp.only_in_a],
        "onlyInB": [{"path": _path(x.path), "spanId": hex_span_id(tb.spans[x.index].span_id),
                     "durationNs": x.duration_ns, "selfNs": x.self_ns} for x in cmp.only_in_b],
        "changed": [{
            "path": _path(c.path), "service": c.service, "operation": c.operation,
            "spanIdA": hex_span_id(ta.spans[c.a_index].span_id), "spanIdB": hex_span_id(tb.spans[c.b_index].span_id),
            "durationANs": c.duration_a_ns, "durationBNs": c.duration_b_ns, "selfANs": c.self_a_ns,
            "selfBNs": c.self_b_ns, "durationDeltaNs": c.duration_delta_ns, "selfDeltaNs": c.self_delta_ns,
            "impactNs": c.impact_ns,
        } for c in cmp.changed],
        "rows": rows,
        "rowsTruncated": truncated,
    }
    return json_response(doc, request)
