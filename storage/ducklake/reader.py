"""The read path of the DuckLake store: trace lookups, search, services, dependencies.

Every method takes the calling thread's own cursor (DuckDB connections are not shared across
threads). Each statement runs in its own auto-committed transaction, so it sees the latest
snapshot, including commits of other processes attached to the same catalog.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import duckdb
import pyarrow as pa

from spanlake.model import RESOURCE_SCHEMA, SCOPE_SCHEMA, Span, spans_from_arrow
from spanlake.storage.api import (
    DependencyLink,
    FoundTrace,
    GetTrace,
    Operation,
    ServiceSpanCount,
    TraceQuery,
    TraceSummary,
)
from spanlake.storage.ducklake import search_sql

#: Trace ids per statement: keeps IN lists and time ranges small.
IDS_PER_QUERY = 200
#: Resource and scope rows kept per kind before the cache starts over.
CACHE_MAX_IDS = 50_000

Cursor = Callable[[], duckdb.DuckDBPyConnection]


def _arrow(cur: duckdb.DuckDBPyConnection, sql: tuple[str, list[Any]]) -> pa.Table:
    return cur.execute(sql[0], sql[1]).to_arrow_table()


class LakeReader:
    """Reads through ``cursor()``, which returns a cursor owned by the calling thread."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor
        self._cache_lock = threading.Lock()
        self._resources: dict[int, dict[str, Any]] = {}
        self._scopes: dict[int, dict[str, Any]] = {}

    # -- traces by id -----------------------------------------------------------------------

    def get_trace(self, query: GetTrace) -> list[Span]:
        # The time hint is not needed: the trace index gives the exact start range, and using
        # the hint could only cut off spans outside it (the contract returns whole traces).
        return self.get_traces([query.trace_id]).get(query.trace_id, [])

    def get_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[Span]]:
        cur = self._cursor()
        wanted = list(dict.fromkeys(t for t in trace_ids if isinstance(t, bytes) and t))
        # One read transaction: DuckLake then loads the snapshot's metadata from the catalog
        # once for all statements (about half the time of auto-committed statements), and the
        # index and the spans are read from the same snapshot.
        cur.execute("BEGIN TRANSACTION")
        try:
            out = self._get_traces(cur, wanted)
            cur.execute("COMMIT")
        except BaseException:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        return out

    def _get_traces(self, cur: duckdb.DuckDBPyConnection, wanted: list[bytes]) -> dict[bytes, list[Span]]:
        ranges: list[tuple[bytes, int, int]] = []
        for i in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[i : i + IDS_PER_QUERY]
            ranges += cur.execute(*search_sql.trace_ranges_sql(chunk)).fetchall()
        # Chunks of traces close in time keep each statement's start_ns range narrow.
        ranges.sort(key=lambda r: r[1])
        out: dict[bytes, list[Span]] = {}
        for i in range(0, len(ranges), IDS_PER_QUERY):
            chunk = ranges[i : i + IDS_PER_QUERY]
            sql = search_sql.trace_spans_sql(
                [r[0] for r in chunk], min(r[1] for r in chunk), max(r[2] for r in chunk)
            )
            for span in self._spans(cur, _arrow(cur, sql)):
                out.setdefault(span.trace_id, []).append(span)
        return out

    def _spans(self, cur: duckdb.DuckDBPyConnection, spans: pa.Table) -> list[Span]:
        if not spans.num_rows:
            return []
        resources = self._side_rows(cur, spans, "resource_id", self._resources, search_sql.resources_sql, RESOURCE_SCHEMA)
        scopes = self._side_rows(cur, spans, "scope_id", self._scopes, search_sql.scopes_sql, SCOPE_SCHEMA)
        return spans_from_arrow(spans, resources, scopes)

    def _side_rows(
        self,
        cur: duckdb.DuckDBPyConnection,
        spans: pa.Table,
        id_col: str,
        cache: dict[int, dict[str, Any]],
        sql_fn: Callable[[list[int]], tuple[str, list[Any]]],
        schema: pa.Schema,
    ) -> pa.Table:
        """Resource or scope rows of the spans' ids. Rows never change for an id (it is a
        fingerprint of the content), so they are cached; duplicates from other processes
        collapse to one."""
        ids = set(spans.column(id_col).to_pylist())
        with self._cache_lock:
            missing = [i for i in ids if i not in cache]
        if missing:
            rows = _arrow(cur, sql_fn(missing)).to_pylist()
            with self._cache_lock:
                if len(cache) + len(rows) > CACHE_MAX_IDS:
                    cache.clear()
                for row in rows:
                    cache.setdefault(row[id_col], row)
        with self._cache_lock:
            found = [cache[i] for i in ids if i in cache]
        return pa.Table.from_pylist(found, schema=schema)

    # -- search -----------------------------------------------------------------------------

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        rows = self._cursor().execute(*search_sql.find_traces_sql(query)).fetchall()
        return [FoundTrace(r[0], r[1], r[2]) for r in rows]

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        cur = self._cursor()
        return [_summary(r) for r in cur.execute(*search_sql.find_traces_sql(query, summaries=True)).fetchall()]

    def get_services(self) -> list[str]:
        return [r[0] for r in self._cursor().execute(*search_sql.services_sql()).fetchall()]

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        rows = self._cursor().execute(*search_sql.operations_sql(service, span_kind)).fetchall()
        return [Operation(name, kind) for name, kind in rows]

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        rows = self._cursor().execute(*search_sql.dependencies_sql(start_ns, end_ns)).fetchall()
        return [DependencyLink(p, c, n, e) for p, c, n, e in rows]

    def trace_known(self, trace_id: bytes) -> bool:
        return bool(self._cursor().execute(*search_sql.trace_known_sql(trace_id)).fetchone()[0])  # type: ignore[index]


def _summary(row: tuple[Any, ...]) -> TraceSummary:
    trace_id, start_ns, end_ns, span_count, error_count, root_service, root_name, services = row
    per_service: dict[str, list[int]] = {}
    for s in services or []:
        acc = per_service.setdefault(s["name"], [0, 0])
        acc[0] += s["span_count"]
        acc[1] += s["error_count"]
    return TraceSummary(
        trace_id=trace_id,
        root_service_name=root_service or "",
        root_span_name=root_name or "",
        start_ns=start_ns,
        end_ns=end_ns,
        span_count=span_count,
        error_span_count=error_count,
        services=tuple(ServiceSpanCount(name, n, e) for name, (n, e) in sorted(per_service.items())),
    )
