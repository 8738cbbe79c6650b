"""Jaeger search without a join over the whole trace index: newest spans first, few lookups.

A search returns the ``limit`` traces with the latest trace start among the traces that have a
matching span. The trace start comes from the trace index, but looking up every matching trace
costs a scan of the index; instead this asks for the matching traces with the latest matching
span (``last``) first, ``k`` at a time, over time slices that grow backwards from the end of
the window (15 minutes, or 5 when reading files; then as wide as the rate of matches seen so
far suggests, up to 16 times what was covered), and looks up only those traces. When matches
are frequent the newest slice is enough; when they are rare the slices add up to about one scan
of the window.

Stopping is exact: a trace not yet seen has ``last`` below a known bound (the start of the
slices scanned so far, or the ``last`` of the k-th candidate when a slice had more), and its
start is at most its ``last``; once ``limit`` candidates start above that bound, no unseen trace
can rank among them. When a slice has more than ``k`` matching traces and the bound is not met,
the caller retries with a larger ``k`` or falls back to the full query.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spanlake.model import PROMOTED_KEYS, SPAN_SCHEMA
from spanlake.storage.api import TraceQuery
from spanlake.storage.ducklake import search_sql
from spanlake.storage.ducklake.lake_files import DataFile, FileInfo, LakeFiles
from spanlake.storage.ducklake.trace_fetch import not_deleted
from spanlake.storage.ducklake.value_index import Prunable, ValueIndex, prunable

#: Width of the newest slice; each older slice is ``GROWTH`` times wider.
FIRST_SLICE_NS = 15 * 60 * 1_000_000_000
GROWTH = 16
#: Slices reaching further back than this end at the window start at once.
MAX_SLICED_NS = 86_400 * 1_000_000_000

#: (slice start or None, slice end, k) -> up to k+1 (trace id, last matching start), latest first.
Candidates = Callable[[int | None, int, int], list[tuple[bytes, int]]]
#: trace ids -> (trace start, trace end) of those found in the index.
Lookup = Callable[[list[bytes]], dict[bytes, tuple[int, int]]]


def next_slice(lo: int | None, hi: int, end: int, width: int) -> tuple[int | None, int]:
    """The [start, end) slice of [lo, hi) ending at ``end`` and ``width`` wide; None is an open
    start. Slices reaching past ``MAX_SLICED_NS`` or the window start end at the window start."""
    start: int | None = end - width
    if hi - start >= MAX_SLICED_NS or (lo is not None and start <= lo):  # type: ignore[operator]
        start = lo
    return start, end


def next_width(covered: int, seen: int, limit: int, first: int) -> int:
    """Width of the next (older) slice after ``covered`` ns gave ``seen`` candidate traces:
    enough for about 1.5 ``limit`` at the rate seen so far, between ``covered`` and
    ``GROWTH`` times it (that, when nothing was seen)."""
    if seen == 0:
        return max(first, covered * GROWTH)
    factor = min(float(GROWTH), max(1.0, 1.5 * limit / seen - 1.0))
    return max(first, int(covered * factor))


def newest_traces(
    candidates: Candidates, lookup: Lookup, lo: int | None, hi: int, limit: int, k: int, first: int = FIRST_SLICE_NS
) -> list[tuple[bytes, int, int]] | None:
    """(trace id, start, end) of the ``limit`` traces with the latest start, ties by id; None
    when ``k`` candidates per slice were too few to be sure.

    Candidates are looked up latest ``last`` first, ``limit`` (then ``limit``) at a time, until
    the ``limit``-th start found beats the ``last`` of the next candidate not looked up.
    """
    last: dict[bytes, int] = {}
    found: dict[bytes, tuple[int, int]] = {}
    looked: set[bytes] = set()
    ranked: list[tuple[bytes, int, int]] = []
    s_lo: int | None = hi
    width = first
    while s_lo is not None and s_lo != lo:
        if s_lo != hi:
            width = next_width(hi - s_lo, len(last), limit, first)
        s_lo, s_hi = next_slice(lo, hi, s_lo, width)
        rows = candidates(s_lo, s_hi, k)
        truncated = len(rows) > k
        for tid, at in rows[:k]:
            if at > last.get(tid, at - 1):
                last[tid] = at
        complete = s_lo is None or s_lo == lo
        if not (truncated or complete or len(last) >= limit):
            continue
        pending = sorted((t for t in last if t not in looked), key=lambda t: (-last[t], t))
        while True:
            ranked = sorted(((t, s, e) for t, (s, e) in found.items()), key=lambda r: (-r[1], r[0]))
            kth = ranked[limit - 1][1] if len(ranked) >= limit else None
            # A candidate not looked up starts at or before its ``last``.
            if pending and (kth is None or kth <= last[pending[0]]):
                batch, pending = pending[: limit + 8], pending[limit + 8 :]
                found.update(lookup(batch))
                looked.update(batch)
                continue
            break
        if complete and not truncated:
            return ranked[:limit]
        # Traces not among the candidates start at or before the k-th ``last`` of a slice
        # that had more, or before the start of the slices scanned.
        if kth is not None and ((truncated and kth > rows[k - 1][1]) or (not truncated and s_lo is not None and kth >= s_lo)):
            return ranked[:limit]
        if truncated:
            return None
    return ranked[:limit]


# ---------------------------------------------------------------------------------------------
# Candidates read from the span files of a snapshot, outside DuckLake
# ---------------------------------------------------------------------------------------------

#: Width of the newest slice when reading files: a slice costs what its row groups cost, so it
#: starts narrower than over the lake (where each statement also pays catalog work).
FILE_FIRST_SLICE_NS = 5 * 60 * 1_000_000_000
#: Beyond this many row groups (16 per 65k spans) a slice is scanned through the lake instead:
#: DuckDB's scan with its own filter pushdown beats decoding so many row groups with pyarrow.
MAX_DIRECT_ROW_GROUPS = 160


class FileSearch:
    """Search candidates from the Parquet files of the latest snapshot, without a DuckLake
    transaction (which costs 3-5 ms of catalog work per search).

    For a time slice, the row groups of span files whose ``start_ns`` range meets it and whose
    value filters (``value_index.py``) admit every prunable tag condition are read with
    pyarrow, only the columns the conditions use (``search_sql.scan_columns``), deleted rows
    removed. Rows failing a plain condition (window, service, operation, kind, duration) are
    dropped in Arrow (``plain_mask``); when there are tag conditions, so are rows that cannot
    hold any of their values (``may_match``), and ``search_sql.candidates_sql`` runs over the
    rest in DuckDB: the same SQL as over the lake, so results are the same. Without tag
    conditions the rows left all match, and Arrow groups them (``latest_per_trace``).

    Measured on 10M spans (``bench/query.py``): a service + operation search reads ~10 row
    groups of five columns, an attribute search 2-15 row groups of three; the lake scan it
    replaces paid for every row group of the files it opened plus the catalog.
    """

    def __init__(self, files: LakeFiles, index: ValueIndex | None = None) -> None:
        self._files = files
        self._index = index or ValueIndex()
        self._lock = threading.Lock()
        self._side: tuple[int, pa.Table, pa.Table] | None = None

    @property
    def value_index(self) -> ValueIndex:
        return self._index

    def side_tables(self, snapshot: int, load: Callable[[], tuple[pa.Table, pa.Table]]) -> tuple[pa.Table, pa.Table]:
        """(resources, scopes) of ``snapshot``: id and attributes of every row, loaded once per
        snapshot (rows never change for an id; new ones come with new snapshots)."""
        with self._lock:
            side = self._side
        if side is not None and side[0] == snapshot:
            return side[1], side[2]
        resources, scopes = load()
        with self._lock:
            self._side = (snapshot, resources, scopes)
        return resources, scopes

    def side_ids(
        self, cur: duckdb.DuckDBPyConnection, q: TraceQuery, resources: pa.Table, scopes: pa.Table
    ) -> dict[tuple[str, str, str], tuple[int, ...]]:
        out: dict[tuple[str, str, str], tuple[int, ...]] = {}
        lookups = search_sql.side_lookups(q)
        if not lookups:
            return out
        cur.register("_side_resources", resources)
        cur.register("_side_scopes", scopes)
        try:
            for id_col, table, key, text in lookups:
                source = "_side_resources" if table == "lake.resources" else "_side_scopes"
                rows = cur.execute(*search_sql.side_ids_sql(id_col, source, key, text)).fetchall()
                out[(table, key, text)] = tuple(sorted(r[0] for r in rows))
        finally:
            cur.unregister("_side_resources")
            cur.unregister("_side_scopes")
        return out

    def row_groups(
        self,
        cur: duckdb.DuckDBPyConnection,
        infos: list[tuple[DataFile, FileInfo]],
        conds: list[tuple[Prunable, np.ndarray]],
        lo: int | None,
        hi: int,
    ) -> list[tuple[DataFile, FileInfo, np.ndarray]]:
        """Per span file, the row groups that may hold a span starting in [lo, hi) that may
        satisfy every condition of ``conds`` (each with its tokens)."""
        out = []
        for f, info in infos:
            if not info.rows.size:
                continue
            keep = np.ones(len(info.rows), dtype=np.bool_)
            if "start_ns" in info.mins:
                keep &= info.mins["start_ns"] < hi
                if lo is not None:
                    keep &= info.maxs["start_ns"] >= lo
            # Event and link attributes are not in the filters (value_index.py).
            usable = [t for c, t in conds if not (c.key and self._in_nested(cur, info, c.key))]
            if keep.any() and usable:
                filters = self._index.filters(cur, f.path, info, np.nonzero(keep)[0])
                for t in usable:
                    keep &= filters.may_hold_any(t)
            groups = np.nonzero(keep)[0]
            if len(groups):
                out.append((f, info, groups))
        return out

    def _in_nested(self, cur: duckdb.DuckDBPyConnection, info: FileInfo, key: str) -> bool:
        """Whether some event or link of the file may have an attribute ``key``."""
        return any(
            info.may_hold_key(where, key) and key in self._files.nested_keys(cur, info.path, where)
            for where in ("event", "link")
        )

    def read(
        self, selected: list[tuple[DataFile, FileInfo, np.ndarray]], columns: list[str], q: TraceQuery
    ) -> pa.Table:
        """Rows of the selected row groups (deleted ones left out) with exactly ``columns``,
        those that fail a plain column condition of ``q`` left out too (``plain_mask``)."""
        parts = []
        schema = pa.schema([SPAN_SCHEMA.field(c) for c in columns])
        for f, info, groups in selected:
            present = [c for c in columns if c in info.names]
            dictionary = [c for c in ("service_name", "name") if c in present]
            t = read_groups(f, info, groups, present, dictionary)
            keep = plain_mask(t, q) & not_deleted(self._files, f, info, groups)
            if not keep.all():
                t = t.filter(pa.array(keep))
            arrays = [
                (t.column(c).cast(schema.field(c).type) if c in dictionary else t.column(c)) if c in present
                else pa.nulls(t.num_rows, schema.field(c).type)
                for c in columns
            ]
            parts.append(pa.Table.from_arrays(arrays, schema=schema))
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)


def newest_from_files(
    search: FileSearch,
    cur: duckdb.DuckDBPyConnection,
    q: TraceQuery,
    hints: search_sql.Hints,
    infos: list[tuple[DataFile, FileInfo]],
    lookup: Lookup,
    lake_candidates: Candidates,
    lo: int | None,
    hi: int,
) -> list[tuple[bytes, int, int]] | None:
    """:func:`newest_traces` with candidates read from the files (``FileSearch``), slices with
    too many row groups for that going to ``lake_candidates``; None as there."""
    columns = search_sql.scan_columns(q, hints)
    conds = [c for c in (prunable(key, text, hints.side_ids) for key, text in q.attributes) if c is not None]
    with_tokens = [(c, c.tokens(cur)) for c in conds]

    def candidates(s_lo: int | None, s_hi: int, k: int) -> list[tuple[bytes, int]]:
        if columns is None:
            return lake_candidates(s_lo, s_hi, k)
        selected = search.row_groups(cur, infos, with_tokens, s_lo, s_hi)
        if sum(len(g) for _, _, g in selected) > MAX_DIRECT_ROW_GROUPS:
            return lake_candidates(s_lo, s_hi, k)
        if not selected:
            return []
        rows = search.read(selected, columns, q)
        if conds:
            # DuckDB converts Arrow maps slowly (~10 us per row): only rows that may match
            # every prunable condition go to the SQL, which decides.
            keep = np.ones(rows.num_rows, dtype=np.bool_)
            for c in conds:
                keep &= may_match(rows, c)
            rows = rows.filter(pa.array(keep))
            if not rows.num_rows:
                return []
        if not q.attributes:
            # Every condition is a plain one, which ``plain_mask`` applied exactly: what is
            # left matches, and only the grouping of ``candidates_sql`` remains to be done.
            return latest_per_trace(rows, k + 1)
        cur.register("_scan_spans", rows)
        try:
            return cur.execute(*search_sql.candidates_sql(q, s_lo, s_hi, k + 1, hints, source="_scan_spans")).fetchall()
        finally:
            cur.unregister("_scan_spans")

    k = 2 * q.limit + 8
    for _ in range(3):
        top = newest_traces(candidates, lookup, lo, hi, q.limit, k, FILE_FIRST_SLICE_NS)
        if top is not None:
            return top
        k *= 4
    return None


def may_match(rows: pa.Table, c: Prunable) -> np.ndarray:
    """Per row, False only when the row cannot satisfy the condition ``c`` stands for, judged
    on the columns read (those the condition's SQL reads)."""
    names = rows.column_names
    out = np.zeros(rows.num_rows, dtype=np.bool_)
    if c.key:
        values = pa.array(c.values, pa.string())
        if "attributes" in names:
            out |= _map_rows(rows.column("attributes"), c.key, values)
        col = PROMOTED_KEYS.get(c.key)
        if col in names:
            out |= pc.fill_null(pc.is_in(rows.column(col), value_set=values), False).to_numpy(zero_copy_only=False)
        for nested in ("events", "links"):
            if nested in names:
                out |= _nested_rows(rows.column(nested), c.key, values)
    for ids, col in ((c.resource_ids, "resource_id"), (c.scope_ids, "scope_id")):
        if ids and col in names:
            id_set = pa.array(ids, rows.schema.field(col).type)
            out |= pc.fill_null(pc.is_in(rows.column(col), value_set=id_set), False).to_numpy(zero_copy_only=False)
    return out


def _entries_hit(maps: pa.MapArray, key: str, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of ``maps``, indexes of its entries with ``key`` and one of ``values``),
    entry indexes counted from the first entry of ``maps``."""
    off = maps.offsets.to_numpy()
    lo, hi = int(off[0]), int(off[-1])
    keys, items = maps.keys.slice(lo, hi - lo), maps.items.slice(lo, hi - lo)
    hit = pc.and_(pc.equal(keys, key), pc.is_in(items, value_set=values))
    return off - lo, np.nonzero(pc.fill_null(hit, False).to_numpy(zero_copy_only=False))[0]


def _map_rows(column: pa.ChunkedArray, key: str, values: pa.Array) -> np.ndarray:
    parts = []
    for ch in column.chunks:
        mask = np.zeros(len(ch), dtype=np.bool_)
        off, idx = _entries_hit(ch, key, values)
        mask[np.searchsorted(off, idx, side="right") - 1] = True
        parts.append(mask)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)


def _nested_rows(column: pa.ChunkedArray, key: str, values: pa.Array) -> np.ndarray:
    """Rows with an event (or link) holding the attribute."""
    parts = []
    for ch in column.chunks:
        mask = np.zeros(len(ch), dtype=np.bool_)
        off = ch.offsets.to_numpy()
        items = ch.flatten()  # the events of these rows, in order
        if len(items):
            fields = items.flatten()
            maps = fields[items.type.get_field_index("attributes")]
            m_off, idx = _entries_hit(maps, key, values)
            item = np.searchsorted(m_off, idx, side="right") - 1
            mask[np.searchsorted(off - off[0], item, side="right") - 1] = True
        parts.append(mask)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)


def plain_mask(t: pa.Table, q: TraceQuery) -> np.ndarray:
    """Per row, False when a plain condition of ``q`` (time window, service, operation, kind,
    duration bounds) fails; the SQL applies all of them again, so this only saves work."""
    keep = np.ones(t.num_rows, dtype=np.bool_)
    names = t.column_names

    def ints(col: str) -> np.ndarray:
        return t.column(col).to_numpy()

    if q.start_min_ns is not None:
        keep &= ints("start_ns") >= q.start_min_ns
    if q.start_max_ns is not None:
        keep &= ints("start_ns") < q.start_max_ns
    if "duration_ns" in names and q.duration_min_ns is not None:
        keep &= ints("duration_ns") >= q.duration_min_ns
    if "duration_ns" in names and q.duration_max_ns is not None:
        keep &= ints("duration_ns") <= q.duration_max_ns
    if "kind" in names and q.span_kind is not None:
        keep &= pc.fill_null(pc.equal(t.column("kind"), q.span_kind), False).to_numpy(zero_copy_only=False)
    for col, value in (("service_name", q.service_name), ("name", q.operation_name)):
        if col in names and value is not None:
            keep &= _equals(t.column(col), value)
    return keep


def _equals(column: pa.ChunkedArray, value: str) -> np.ndarray:
    """Rows of a (dictionary or plain) string column equal to ``value``; nulls are not."""
    parts = []
    for ch in column.chunks:
        if pa.types.is_dictionary(ch.type):
            # A lookup table over the dictionary, with a last False entry for nulls (-1).
            lut = np.append(pc.fill_null(pc.equal(ch.dictionary, value), False).to_numpy(zero_copy_only=False), False)
            parts.append(lut[pc.fill_null(ch.indices, -1).to_numpy(zero_copy_only=False)])
        else:
            parts.append(pc.fill_null(pc.equal(ch, value), False).to_numpy(zero_copy_only=False))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.bool_)


def read_groups(f: DataFile, info: FileInfo, groups: np.ndarray, columns: list[str], dictionary: list[str] = []) -> pa.Table:
    """Some row groups of a data file, deleted rows included. Without ``pre_buffer``: for a few
    (often scattered) row groups of a file in the page cache, coalesced reads cost more
    (28 index row groups: 19 against 11 ms)."""
    return pq.ParquetFile(f.path, metadata=info.metadata, pre_buffer=False, read_dictionary=dictionary).read_row_groups(
        [int(g) for g in groups], columns=columns
    )


def latest_per_trace(rows: pa.Table, n: int) -> list[tuple[bytes, int]]:
    """``candidates_sql``'s grouping over rows that all match: (trace id, latest start) of the
    ``n`` traces with the latest one, ties by trace id (byte order, as DuckDB orders BLOBs)."""
    if not rows.num_rows:
        return []
    g = rows.select(["trace_id", "start_ns"]).group_by("trace_id").aggregate([("start_ns", "max")])
    g = g.sort_by([("start_ns_max", "descending"), ("trace_id", "ascending")]).slice(0, n)
    return list(zip(g.column("trace_id").to_pylist(), g.column("start_ns_max").to_pylist()))
