"""The read path of the DuckLake store: trace lookups, search, services, dependencies, latency rows.

Every read runs on the calling thread's own cursor, in one short read transaction
(``read_session.py``), so it sees the latest commit, of this process or another.
Lookups and searches that read files directly take the latest snapshot's file list, and ask
the catalog for the latest snapshot id only after a commit changed a SQLite catalog's files
(``catalog_stamp.py``).

Trace lookups by id read the trace index and span files of that snapshot with pyarrow, only the
row groups the cached footers point at (``trace_fetch.py``, which says why not DuckDB). Searches
read the span files of that snapshot too, only the row groups their time slice and the row-group
value filters leave (``trace_search.FileSearch``, ``value_index.py``), and no DuckLake
transaction while the snapshot's file list is known; other reads are SQL (``search_sql.py``).
Lakes whose files cannot be read directly (object storage, encryption) use SQL for lookups and
searches too.
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
from spanlake.storage.ducklake import search_sql, trace_fetch, trace_search
from spanlake.storage.ducklake.catalog_stamp import LatestSnapshot
from spanlake.storage.ducklake.lake_files import DataFile, FileInfo, LakeFiles, latest_snapshot
from spanlake.storage.ducklake.read_session import ReadSessions
from spanlake.storage.ducklake.value_index import ValueIndex

#: Trace ids per statement: keeps IN lists and time ranges small.
IDS_PER_QUERY = 200
#: Resource and scope rows kept per kind before the cache starts over.
CACHE_MAX_IDS = 50_000

Cursor = Callable[[], duckdb.DuckDBPyConnection]


def _arrow(cur: duckdb.DuckDBPyConnection, sql: tuple[str, list[Any]]) -> pa.Table:
    return cur.execute(sql[0], sql[1]).to_arrow_table()


class LakeReader:
    """Reads through cursors from ``new_cursor`` (one per thread, owned by the store)."""

    def __init__(self, new_cursor: Cursor, catalog_stamp: Callable[[], bytes] | None = None,
                 value_index: ValueIndex | None = None) -> None:
        self._sessions = ReadSessions(new_cursor)
        # Asks the catalog only after a commit changed its stamp (``catalog_stamp.py``).
        self._latest_snapshot = LatestSnapshot(latest_snapshot, catalog_stamp)
        self._files = LakeFiles(trace_fetch.STATS_COLUMNS)
        self._search = trace_search.FileSearch(self._files, value_index)
        self._cache_lock = threading.Lock()
        self._resources: dict[int, dict[str, Any]] = {}
        self._scopes: dict[int, dict[str, Any]] = {}

    # -- traces by id -----------------------------------------------------------------------

    def get_trace(self, query: GetTrace) -> list[Span]:
        # The time hint is not needed: the trace index gives the exact start range, and using
        # the hint could only cut off spans outside it (the contract returns whole traces).
        return self.get_traces([query.trace_id]).get(query.trace_id, [])

    def get_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[Span]]:
        wanted = list(dict.fromkeys(t for t in trace_ids if isinstance(t, bytes) and t))
        if not wanted:
            return {}
        try:
            return self._get_traces(wanted)
        except FileNotFoundError:
            # Maintenance removed files of the snapshot just listed: read the next one.
            return self._get_traces(wanted)

    def _get_traces(self, wanted: list[bytes]) -> dict[bytes, list[Span]]:
        _, lists = self._latest_lists()
        index_files, span_files = lists["trace_index"], lists["spans"]
        if index_files is None or span_files is None:
            with self._sessions.read() as (cur, _):
                return self._get_traces_sql(cur, wanted)
        out: dict[bytes, list[Span]] = {}
        for i in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[i : i + IDS_PER_QUERY]
            ranges = trace_fetch.trace_ranges(self._files, index_files, {search_sql.trace_key(t): t for t in chunk})
            if ranges:
                rows, order = trace_fetch.trace_span_rows(self._files, span_files, ranges)
                spans = self._spans(rows)
                if order is not None:  # by trace id, then start time
                    spans = [spans[k] for k in order]
                for span in spans:
                    out.setdefault(span.trace_id, []).append(span)
        return out

    def _latest_lists(self) -> tuple[int, dict[str, list[DataFile] | None]]:
        """(latest snapshot id, its span and trace index files). Files of the latest snapshot
        are never cleaned up, so no transaction has to stay open while they are read."""
        snapshot = self._latest_snapshot(self._sessions.cursor())
        lists = self._files.cached(snapshot)
        if lists is None:
            with self._sessions.read(snapshot=True) as (cur, snap):
                assert snap is not None
                lists, snapshot = self._lists_in(cur, snap), snap
        return snapshot, lists

    def _get_traces_sql(self, cur: duckdb.DuckDBPyConnection, wanted: list[bytes]) -> dict[bytes, list[Span]]:
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
            for span in self._spans(_arrow(cur, sql), cur):
                out.setdefault(span.trace_id, []).append(span)
        return out

    def _spans(self, spans: pa.Table, cur: duckdb.DuckDBPyConnection | None = None) -> list[Span]:
        if not spans.num_rows:
            return []
        resources = self._side_rows(cur, spans, "resource_id", self._resources, search_sql.resources_sql, RESOURCE_SCHEMA)
        scopes = self._side_rows(cur, spans, "scope_id", self._scopes, search_sql.scopes_sql, SCOPE_SCHEMA)
        return spans_from_arrow(spans, resources, scopes)

    def _side_rows(
        self,
        cur: duckdb.DuckDBPyConnection | None,
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
            if cur is None:
                with self._sessions.read() as (c, _):
                    rows = _arrow(c, sql_fn(missing)).to_pylist()
            else:
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

    def _rows(self, sql: tuple[str, list[Any]]) -> list[tuple[Any, ...]]:
        with self._sessions.read() as (cur, _):
            return cur.execute(*sql).fetchall()

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        return [FoundTrace(r[0], r[1], r[2]) for r in self._find(query, summaries=False)]

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        return [_summary(r) for r in self._find(query, summaries=True)]

    def _find(self, q: TraceQuery, *, summaries: bool) -> list[tuple[Any, ...]]:
        try:
            return self._find_in_snapshot(q, summaries=summaries)
        except FileNotFoundError:
            # Maintenance removed files of the snapshot just read: read the next one.
            return self._find_in_snapshot(q, summaries=summaries)

    def _find_in_snapshot(self, q: TraceQuery, *, summaries: bool) -> list[tuple[Any, ...]]:
        if q.limit > 0:
            found = self._find_in_files(q)
            if found is not None:
                top, index_files = found
                if not summaries:
                    return top
                keys = {search_sql.trace_key(t): t for t, _, _ in top}
                rows = trace_fetch.trace_summaries(self._files, index_files, keys)
                return [rows[t] for t, _, _ in top if t in rows]
        with self._sessions.read(snapshot=True) as (cur, snapshot):
            assert snapshot is not None
            lists = self._lists_in(cur, snapshot)
            index_files, span_files = lists["trace_index"], lists["spans"]
            top = None
            if q.limit > 0 and index_files is not None and span_files is not None:
                top = self._newest(cur, q, index_files, span_files)
            if top is None:
                return cur.execute(*search_sql.find_traces_sql(q, summaries=summaries)).fetchall()
            if not summaries:
                return top
            keys = {search_sql.trace_key(t): t for t, _, _ in top}
            rows = trace_fetch.trace_summaries(self._files, index_files, keys)
            return [rows[t] for t, _, _ in top if t in rows]

    def _find_in_files(self, q: TraceQuery) -> tuple[list[tuple[bytes, int, int]], list[DataFile]] | None:
        """(newest traces, index files) of a search read from the files of the latest snapshot
        (``trace_search.FileSearch``) without a DuckLake transaction when the snapshot's file
        list is known; None when the files cannot be read directly."""
        cur = self._sessions.cursor()
        snapshot, lists = self._latest_lists()
        index_files, span_files = lists["trace_index"], lists["spans"]
        if index_files is None or span_files is None:
            return None
        infos = [(f, self._files.info(f.path, "spans")) for f in span_files]
        if any(i.rows.size and "start_ns" not in i.mins for _, i in infos):
            return None
        lows = [int(i.mins["start_ns"].min()) for _, i in infos if i.rows.size]
        highs = [int(i.maxs["start_ns"].max()) for _, i in infos if i.rows.size]
        if not highs:
            return [], index_files
        hi = max(highs) + 1 if q.start_max_ns is None else min(q.start_max_ns, max(highs) + 1)
        lo = min(lows) if q.start_min_ns is None else max(q.start_min_ns, min(lows))
        if lo >= hi:
            return [], index_files
        window = [(f, i) for f, i in infos if _overlaps(i, lo, hi)]
        at = f"lake.spans AT (VERSION => {int(snapshot)})"

        def load_side() -> tuple[pa.Table, pa.Table]:
            with self._sessions.read() as (c, _):
                return (
                    c.execute(f"SELECT resource_id, attributes FROM lake.resources AT (VERSION => {int(snapshot)})").to_arrow_table(),
                    c.execute(f"SELECT scope_id, attributes FROM lake.scopes AT (VERSION => {int(snapshot)})").to_arrow_table(),
                )

        resources, scopes = self._search.side_tables(snapshot, load_side)
        hints = search_sql.Hints(
            self._no_key(cur, q, [i for _, i in window]), self._search.side_ids(cur, q, resources, scopes)
        )

        def lake_candidates(s_lo: int | None, s_hi: int, k: int) -> list[tuple[bytes, int]]:
            with self._sessions.read() as (c, _):
                return c.execute(*search_sql.candidates_sql(q, s_lo, s_hi, k + 1, hints, source=at)).fetchall()

        def lookup(ids: list[bytes]) -> dict[bytes, tuple[int, int]]:
            return self._bounds(index_files, ids)

        top = trace_search.newest_from_files(self._search, cur, q, hints, window, lookup, lake_candidates, lo, hi)
        return None if top is None else (top, index_files)

    def _bounds(self, index_files: list[DataFile], ids: list[bytes]) -> dict[bytes, tuple[int, int]]:
        """(start, end) of each trace of ``ids`` found in the trace index files."""
        out: dict[bytes, tuple[int, int]] = {}
        for i in range(0, len(ids), IDS_PER_QUERY):
            keys = {search_sql.trace_key(t): t for t in ids[i : i + IDS_PER_QUERY]}
            out.update(trace_fetch.trace_bounds(self._files, index_files, keys))
        return out

    def _no_key(self, cur: duckdb.DuckDBPyConnection, q: TraceQuery, infos: list[FileInfo]) -> frozenset[tuple[str, str]]:
        """(map, key) pairs of ``q``'s attribute keys that no span, event or link map of the
        window's files holds (``search_sql.Hints.no_key``)."""
        no_key: set[tuple[str, str]] = set()
        for key, _ in q.attributes:
            for where in ("span", "event", "link"):
                maybe = [i for i in infos if i.may_hold_key(where, key)]
                if where != "span":
                    maybe = [i for i in maybe if key in self._files.nested_keys(cur, i.path, where)]
                if not maybe:
                    no_key.add((where, key))
        return frozenset(no_key)

    def _newest(
        self, cur: duckdb.DuckDBPyConnection, q: TraceQuery, index_files: list[DataFile], span_files: list[DataFile]
    ) -> list[tuple[bytes, int, int]] | None:
        """``trace_search.newest_traces`` over the span files, or None for the full query."""
        starts = [self._files.info(f.path, "spans") for f in span_files]
        if not starts or any(i.rows.size and "start_ns" not in i.mins for i in starts):
            return None if starts else []
        lows = [int(i.mins["start_ns"].min()) for i in starts if i.rows.size]
        highs = [int(i.maxs["start_ns"].max()) for i in starts if i.rows.size]
        if not highs:
            return []
        hi = max(highs) + 1 if q.start_max_ns is None else min(q.start_max_ns, max(highs) + 1)
        lo = min(lows) if q.start_min_ns is None else max(q.start_min_ns, min(lows))
        if lo >= hi:
            return []

        hints = self._hints(cur, q, [i for i in starts if _overlaps(i, lo, hi)])

        def candidates(s_lo: int | None, s_hi: int, k: int) -> list[tuple[bytes, int]]:
            return cur.execute(*search_sql.candidates_sql(q, s_lo, s_hi, k + 1, hints)).fetchall()

        def lookup(ids: list[bytes]) -> dict[bytes, tuple[int, int]]:
            return self._bounds(index_files, ids)

        k = 2 * q.limit + 8
        for _ in range(3):
            top = trace_search.newest_traces(candidates, lookup, lo, hi, q.limit, k)
            if top is not None:
                return top
            k *= 4
        return None

    def _hints(self, cur: duckdb.DuckDBPyConnection, q: TraceQuery, infos: list[FileInfo]) -> search_sql.Hints:
        """Conditions of ``q`` that cannot match, learnt from the key statistics of the span
        files of the window and from the (small) scope and resource tables."""
        side = {}
        for id_col, table, key, text in search_sql.side_lookups(q):
            rows = cur.execute(*search_sql.side_ids_sql(id_col, table, key, text)).fetchall()
            side[(table, key, text)] = tuple(sorted(r[0] for r in rows))
        return search_sql.Hints(self._no_key(cur, q, infos), side)

    def _lists_in(self, cur: duckdb.DuckDBPyConnection, snapshot: int) -> dict[str, list[DataFile] | None]:
        """Span and trace index files of the snapshot ``cur``'s transaction reads."""
        lists = self._files.cached(snapshot)
        if lists is None:
            lists = {t: LakeFiles.list_files(cur, t) for t in ("trace_index", "spans")}
            self._files.remember(snapshot, lists)
        return lists

    def get_services(self) -> list[str]:
        ops = self._operations()
        if ops is None:
            return [r[0] for r in self._rows(search_sql.services_sql())]
        return sorted({svc for svc, _, _ in ops})

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        ops = self._operations()
        if ops is None:
            return [Operation(name, kind) for name, kind in self._rows(search_sql.operations_sql(service, span_kind))]
        return [
            Operation(name, kind)
            for name, kind in sorted({(n, k) for svc, n, k in ops if svc == service and (span_kind is None or k == span_kind)})
        ]

    def _operations(self) -> set[tuple[str, str, int]] | None:
        """Distinct (service, span name, kind) of the latest snapshot, from per-file sets that
        are computed once per (immutable) file; None when the files cannot be read directly."""
        for attempt in (1, 2):
            span_files = self._latest_lists()[1]["spans"]
            if span_files is None:
                return None
            out: set[tuple[str, str, int]] = set()
            try:
                for f in span_files:
                    out |= self._files.operations(f)
            except FileNotFoundError:
                if attempt == 2:
                    raise
                continue  # removed by maintenance: list the next snapshot
            return out
        return None

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        counts: dict[tuple[str, str], list[int]] = {}

        def add(parent: str, child: str, is_error: bool, calls: int) -> None:
            if parent != child:
                acc = counts.setdefault((parent, child), [0, 0])
                acc[0] += calls
                acc[1] += calls if is_error else 0

        with self._sessions.read() as (cur, _):
            rows = cur.execute(*search_sql.dependencies_sql(start_ns, end_ns)).fetchall()
            lost = [(k, c, e, n) for p, c, e, k, n in rows if k is not None]
            for p, c, e, k, n in rows:
                if k is None:
                    add(p, c, e, n)
            if lost:
                table = pa.table({"lost_key": pa.array(sorted({r[0] for r in lost}), pa.uint64())})
                cur.register("_lost", table)
                try:
                    before = start_ns - search_sql.DEPENDENCY_SLACK_NS
                    parents = cur.execute(*search_sql.lost_parents_sql(before, "_lost")).fetchall()
                finally:
                    cur.unregister("_lost")
                by_key: dict[int, list[str]] = {}
                for key, service in parents:
                    by_key.setdefault(key, []).append(service)
                for key, child, is_error, calls in lost:
                    for parent in by_key.get(key, []):
                        add(parent, child, is_error, calls)
        return [DependencyLink(p, c, n, e) for (p, c), (n, e) in sorted(counts.items())]

    def span_latency_rows(
        self,
        service: str,
        operation: str | None,
        span_kind: int | None,
        attributes: tuple[tuple[str, str], ...],
        start_ns: int,
        end_ns: int,
        limit: int = 1_000_000,
        entry_only: bool = False,
    ) -> pa.Table:
        if not attributes and not entry_only:  # one statement: no transaction needed
            sql = search_sql.latency_rows_sql(service, operation, span_kind, attributes, start_ns, end_ns, limit)
            return _arrow(self._sessions.cursor(), sql).cast(search_sql.LATENCY_ROWS_SCHEMA)
        with self._sessions.read(snapshot=True) as (cur, snapshot):
            hints = search_sql.Hints()
            if snapshot is not None and attributes:
                span_files = self._lists_in(cur, snapshot)["spans"]
                if span_files is not None:
                    infos = [self._files.info(f.path, "spans") for f in span_files]
                    q = TraceQuery(attributes=attributes)
                    hints = self._hints(cur, q, [i for i in infos if _overlaps(i, start_ns, end_ns)])
            parents_from = None
            if entry_only:  # a separate statement: the bound must be a constant to prune files
                q = search_sql.latency_query(service, operation, span_kind, attributes, start_ns, end_ns)
                ((parents_from,),) = cur.execute(*search_sql.entry_parents_from_sql(q, hints)).fetchall()
            sql = search_sql.latency_rows_sql(service, operation, span_kind, attributes, start_ns, end_ns, limit, hints,
                                              entry_only=entry_only, parents_from_ns=parents_from)
            t = _arrow(cur, sql)
        return t.cast(search_sql.LATENCY_ROWS_SCHEMA)

    def trace_known(self, trace_id: bytes) -> bool:
        return bool(self._rows(search_sql.trace_known_sql(trace_id))[0][0])


def _overlaps(info: FileInfo, lo: int, hi: int) -> bool:
    """Whether a span file may hold spans starting in [lo, hi)."""
    if not info.rows.size:
        return False
    if "start_ns" not in info.mins:
        return True
    return int(info.mins["start_ns"].min()) < hi and int(info.maxs["start_ns"].max()) >= lo


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
