"""Trace lookups that read the Parquet files of a snapshot directly with pyarrow.

A DuckDB scan pays for every row group of every file it opens, for every projected column,
even for row groups its statistics skip (measured on 10M spans: about 50 us per skipped
row group for the 31 span columns), and DuckLake adds its own per-statement catalog work. A
lookup by trace id needs one or two row groups, so here the row groups are chosen from cached
footers (trace index: ``trace_key`` min/max, the index being sorted by it once compacted;
spans: ``start_ns`` and ``trace_id`` min/max) and only those are decoded.

Reading outside DuckDB also sidesteps DuckDB's own BLOB bug: its Parquet reader drops row
groups whose (DuckDB-written) Bloom filter does contain a BLOB it is asked to find by
equality, so ``trace_id = ?`` finds nothing even in plain ``read_parquet`` scans. Here ids are
compared in Arrow.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spanlake.model import SPAN_SCHEMA
from spanlake.storage.ducklake.lake_files import DataFile, FileInfo, LakeFiles

#: Columns whose row-group statistics lookups prune on, per table.
STATS_COLUMNS: dict[str, tuple[str, ...]] = {
    "trace_index": ("trace_key",),
    "spans": ("start_ns", "trace_id"),
}
RANGE_COLUMNS = ["trace_key", "trace_id", "start_ns", "max_start_ns", "end_ns"]
SUMMARY_COLUMNS = [
    "trace_key", "trace_id", "start_ns", "end_ns", "span_count", "error_count",
    "root_service_name", "root_span_name", "root_start_ns", "services",
]


def index_rows(files: LakeFiles, index_files: list[DataFile], keys: Iterable[str], columns: list[str]) -> pa.Table:
    """The trace index rows (several per trace: one per commit) of the given trace keys."""
    wanted = sorted(set(keys))
    parts: list[pa.Table] = []
    for f in index_files:
        info = files.info(f.path, "trace_index")
        groups = [int(g) for g in info.holding("trace_key", wanted)]
        if groups:
            # A few, often scattered, index row groups of a file in the page cache: coalesced
            # reads cost more (28 row groups: 19 against 11 ms).
            t = _read(files, f, info, groups, columns, pre_buffer=False)
            t = t.filter(pc.is_in(t.column("trace_key"), pa.array(wanted, pa.string())))
            if t.num_rows:
                parts.append(t)
    return pa.concat_tables(parts) if parts else pa.table({c: pa.array([]) for c in columns})


def trace_ranges(files: LakeFiles, index_files: list[DataFile], keys: dict[str, bytes]) -> dict[bytes, tuple[int, int, int]]:
    """(first span start, last span start, trace end) of each known trace."""
    t = index_rows(files, index_files, keys, RANGE_COLUMNS)
    out: dict[bytes, tuple[int, int, int]] = {}
    for key, lo, hi, end in zip(
        t.column("trace_key").to_pylist(), t.column("start_ns").to_pylist(),
        t.column("max_start_ns").to_pylist(), t.column("end_ns").to_pylist(),
    ):
        tid = keys[key]
        if tid in out:
            a, b, c = out[tid]
            out[tid] = (min(a, lo), max(b, hi), max(c, end))
        else:
            out[tid] = (lo, hi, end)
    return out


def trace_bounds(files: LakeFiles, index_files: list[DataFile], keys: dict[str, bytes]) -> dict[bytes, tuple[int, int]]:
    """(trace start, trace end) of each known trace: what a search returns."""
    t = index_rows(files, index_files, keys, ["trace_key", "start_ns", "end_ns"])
    out: dict[bytes, tuple[int, int]] = {}
    for key, lo, end in zip(t.column("trace_key").to_pylist(), t.column("start_ns").to_pylist(), t.column("end_ns").to_pylist()):
        tid = keys[key]
        a, b = out.get(tid, (lo, end))
        out[tid] = (min(a, lo), max(b, end))
    return out


def trace_summaries(files: LakeFiles, index_files: list[DataFile], keys: dict[str, bytes]) -> dict[bytes, tuple[Any, ...]]:
    """Per trace, the row ``search_sql.trace_summaries_sql`` gives: (trace_id, start, end,
    span count, error count, root service, root span name, services)."""
    t = index_rows(files, index_files, keys, SUMMARY_COLUMNS)
    out: dict[bytes, list[Any]] = {}
    root_at: dict[bytes, int] = {}
    for row in t.to_pylist():
        tid = keys[row["trace_key"]]
        acc = out.get(tid)
        if acc is None:
            acc = out[tid] = [tid, row["start_ns"], row["end_ns"], 0, 0, None, None, []]
        acc[1], acc[2] = min(acc[1], row["start_ns"]), max(acc[2], row["end_ns"])
        acc[3] += row["span_count"]
        acc[4] += row["error_count"]
        acc[7] += row["services"] or []
        rs = row["root_start_ns"]
        if rs is not None and (tid not in root_at or rs < root_at[tid]):
            root_at[tid] = rs
            acc[5], acc[6] = row["root_service_name"], row["root_span_name"]
    return {tid: tuple(acc) for tid, acc in out.items()}


def trace_spans(files: LakeFiles, span_files: list[DataFile], ranges: dict[bytes, tuple[int, int, int]]) -> pa.Table:
    """Rows (SPAN_SCHEMA) of the given traces, sorted by trace id then start time."""
    t, order = trace_span_rows(files, span_files, ranges)
    return t if order is None else t.take(order)


def trace_span_rows(
    files: LakeFiles, span_files: list[DataFile], ranges: dict[bytes, tuple[int, int, int]]
) -> tuple[pa.Table, list[int] | None]:
    """Rows (SPAN_SCHEMA) of the given traces as read, and the row order that sorts them by
    trace id then start time (None when they already are in that order).

    Reordering the rows is left to the caller: taking rows of a table copies every column,
    nested attribute maps included, which for a 100,000-span trace costs more than reading
    it, whereas reordering the spans built from them is one pass over a list.
    """
    parts: list[pa.Table] = []
    ids = pa.array(list(ranges), pa.binary())
    for f in span_files:
        info = files.info(f.path, "spans")
        groups = sorted(_span_groups(info, ranges.items()))
        if groups:
            t = _read(files, f, info, groups, SPAN_SCHEMA.names)
            mask = pc.is_in(t.column("trace_id"), ids)
            matched = pc.sum(mask).as_py() or 0
            if matched and matched < t.num_rows:
                t = t.filter(mask)  # a copy of every column: only when some rows are other traces'
            if matched:
                parts.append(t)
    if not parts:
        return SPAN_SCHEMA.empty_table(), None
    t = pa.concat_tables(parts)
    order = pc.sort_indices(t.select(["trace_id", "start_ns"]), [("trace_id", "ascending"), ("start_ns", "ascending")])
    positions = order.to_numpy()
    if bool((positions == np.arange(len(positions))).all()):
        return t, None
    return t, positions.tolist()


def _span_groups(info: FileInfo, ranges: Iterable[tuple[bytes, tuple[int, int, int]]]) -> set[int]:
    groups: set[int] = set()
    for tid, (lo, hi, _) in ranges:
        if not info.may_overlap("start_ns", lo, hi):
            continue
        # numpy compares the fixed-width byte strings (zero padded), never Python bytes with
        # numpy's trailing-zero-stripped scalars.
        both = np.intersect1d(info.overlapping("start_ns", lo, hi), info.overlapping("trace_id", tid, tid))
        groups.update(int(g) for g in both)
    return groups


def not_deleted(files: LakeFiles, f: DataFile, info: FileInfo, groups: np.ndarray | list[int]) -> np.ndarray:
    """Per row of the row groups ``groups`` of ``f``, whether its delete file keeps it."""
    n = int(info.rows[groups].sum())
    if not f.delete_path:
        return np.ones(n, dtype=np.bool_)
    deleted = files.deleted_rows(f.delete_path)
    rownum = np.concatenate([np.arange(info.offsets[g], info.offsets[g] + info.rows[g]) for g in groups])
    return ~np.isin(rownum, deleted, assume_unique=True)


def _read(files: LakeFiles, f: DataFile, info: FileInfo, groups: list[int], columns: list[str],
          pre_buffer: bool = True) -> pa.Table:
    """Row groups of a data file without the rows its delete file removes, with exactly
    ``columns`` (those missing from an older file are nulls), typed as the model wants."""
    # Columns that hold only nulls in these row groups (unused promoted attributes, often)
    # come back as nulls without being read.
    empty = info.null_in(groups)
    present = [c for c in columns if c in info.names and c not in empty]
    t = pq.ParquetFile(f.path, metadata=info.metadata, pre_buffer=pre_buffer).read_row_groups(groups, columns=present)
    if f.delete_path:
        keep = not_deleted(files, f, info, groups)
        if not keep.all():
            t = t.filter(pa.array(keep))
    if columns == SPAN_SCHEMA.names:
        arrays = [t.column(c) if c in present else pa.nulls(t.num_rows, SPAN_SCHEMA.field(c).type) for c in columns]
        try:
            return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)
        except (TypeError, pa.ArrowInvalid):  # a file of an older schema: convert
            return pa.Table.from_arrays(arrays, names=columns).cast(SPAN_SCHEMA)
    if present != columns:
        schema = info.metadata.schema.to_arrow_schema()
        t = pa.Table.from_arrays(
            [t.column(c) if c in present else pa.nulls(t.num_rows, schema.field(c).type if c in schema.names else pa.null()) for c in columns],
            names=columns,
        )
    return t
