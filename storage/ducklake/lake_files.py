"""What the read path knows about the lake outside DuckDB: the latest snapshot, the data files
of a snapshot, and the footers of those (immutable) Parquet files.

* :func:`latest_snapshot` asks the catalog for the latest snapshot id (1-2.5 ms; readers
  skip it while a SQLite catalog is unchanged, see ``catalog_stamp.py``);
* :class:`LakeFiles` keeps, per snapshot, the data and delete files of some tables (listed
  with ``ducklake_list_files`` once per snapshot), and per file its row groups with the
  min/max statistics that lookups prune on, and the distinct operations of span files. Files
  never change once written, so all of it is cached by path; delete files (DuckLake's position
  deletes) likewise.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Footers (and delete positions) kept before the oldest is dropped.
MAX_CACHED_FILES = 4096

#: Parquet leaf paths of the keys of the attribute maps of a span, its events and its links.
KEY_LEAVES = {
    "span": "attributes.key_value.key",
    "event": "events.list.element.attributes.key_value.key",
    "link": "links.list.element.attributes.key_value.key",
}


def latest_snapshot(cur: duckdb.DuckDBPyConnection) -> int:
    """Id of the latest committed snapshot, read from the catalog database itself (about 1 ms
    on SQLite, against about 2 ms more for the first lake statement of a transaction)."""
    ((snapshot,),) = cur.execute("SELECT max(snapshot_id) FROM __ducklake_metadata_lake.ducklake_snapshot").fetchall()
    return int(snapshot)


def current_snapshot(cur: duckdb.DuckDBPyConnection) -> int:
    """Id of the snapshot the transaction of ``cur`` reads."""
    ((snapshot,),) = cur.execute("SELECT id FROM ducklake_current_snapshot('lake')").fetchall()
    return int(snapshot)


@dataclass(frozen=True)
class DataFile:
    path: str
    delete_path: str | None


@dataclass
class FileInfo:
    """Row groups of one Parquet file: first row, row count, and min/max of some columns as
    numpy arrays (strings as bytes); bounds a file lacks are the widest possible."""

    path: str
    metadata: Any  # pyarrow.parquet.FileMetaData
    names: list[str]
    offsets: np.ndarray
    rows: np.ndarray
    mins: dict[str, np.ndarray]
    maxs: dict[str, np.ndarray]
    #: Per attribute map (``KEY_LEAVES``), the [min, max] of its keys in each row group that has
    #: any; None when some row group has keys but no statistics.
    key_bounds: dict[str, list[tuple[str, str]] | None]
    #: Per flat column, whether each row group holds only nulls (then it need not be read).
    all_null: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        # The same as one matrix (flat column x row group), to test every column at once.
        self._null_columns = list(self.all_null)
        self._null_matrix = (np.array([self.all_null[c] for c in self._null_columns], dtype=bool)
                             if self._null_columns else np.zeros((0, len(self.rows)), dtype=bool))
        # Whole-file [min, max] of each integer statistics column (times), to rule a file out
        # in one comparison.
        self._file_bounds = {c: (int(self.mins[c].min()), int(self.maxs[c].max()))
                             for c in self.mins if len(self.mins[c]) and self.mins[c].dtype.kind == "i"}

    def null_in(self, groups: list[int]) -> set[str]:
        """Flat columns holding only nulls in every one of ``groups``."""
        if not self._null_columns:
            return set()
        empty = self._null_matrix[:, groups].all(axis=1)
        return {c for c, e in zip(self._null_columns, empty.tolist()) if e}

    def may_overlap(self, column: str, lo: Any, hi: Any) -> bool:
        """False only when no row group's [min, max] of the integer column ``column`` can
        meet [lo, hi]."""
        bounds = self._file_bounds.get(column)
        if bounds is None:
            return bool(len(self.rows))
        return bounds[0] <= hi and bounds[1] >= lo

    def may_hold_key(self, where: str, key: str) -> bool:
        """False only when no attribute map ``where`` of this file can hold ``key``."""
        bounds = self.key_bounds.get(where)
        return bounds is None or any(lo <= key <= hi for lo, hi in bounds)

    def overlapping(self, column: str, lo: Any, hi: Any) -> np.ndarray:
        """Indexes of the row groups whose [min, max] of ``column`` meets [lo, hi]."""
        mins, maxs = self.mins.get(column), self.maxs.get(column)
        if mins is None or maxs is None:
            return np.arange(len(self.rows))
        if isinstance(lo, str):
            lo, hi = lo.encode(), hi.encode()
        return np.nonzero((mins <= hi) & (maxs >= lo))[0]

    def holding(self, column: str, values: list[Any]) -> np.ndarray:
        """Indexes of the row groups whose [min, max] of ``column`` holds one of ``values``
        (one comparison for all of them, not one :meth:`overlapping` per value)."""
        mins, maxs = self.mins.get(column), self.maxs.get(column)
        if mins is None or maxs is None:
            return np.arange(len(self.rows))
        if not values:
            return np.arange(0)
        v = np.array([x.encode() if isinstance(x, str) else x for x in values])
        return np.nonzero(((mins[:, None] <= v[None, :]) & (maxs[:, None] >= v[None, :])).any(axis=1))[0]


class LakeFiles:
    """Per-snapshot file lists of lake tables and cached footers of their files."""

    def __init__(self, stats_columns: dict[str, tuple[str, ...]]) -> None:
        self._stats_columns = stats_columns
        self._lock = threading.Lock()
        self._lists: dict[int, dict[str, list[DataFile] | None]] = {}
        self._infos: OrderedDict[str, FileInfo] = OrderedDict()
        self._deletes: OrderedDict[str, np.ndarray] = OrderedDict()
        self._operations: OrderedDict[str, frozenset[tuple[str, str, int]]] = OrderedDict()
        self._nested_keys: OrderedDict[str, frozenset[str]] = OrderedDict()

    def cached(self, snapshot: int) -> dict[str, list[DataFile] | None] | None:
        """File lists remembered for ``snapshot`` (table -> files), if any."""
        with self._lock:
            return self._lists.get(snapshot)

    def remember(self, snapshot: int, lists: dict[str, list[DataFile] | None]) -> None:
        with self._lock:
            # Only the latest snapshots are asked for again.
            for old in [k for k in self._lists if k < snapshot - 8]:
                del self._lists[old]
            self._lists[snapshot] = lists

    @staticmethod
    def list_files(cur: duckdb.DuckDBPyConnection, table: str) -> list[DataFile] | None:
        """Data files of ``table`` in the snapshot ``cur``'s transaction reads, or None when
        they cannot be read directly (not local, encrypted, or deletion vectors)."""
        rows = cur.execute(
            "SELECT data_file, data_file_encryption_key, delete_file, delete_file_encryption_key "
            "FROM ducklake_list_files('lake', ?)",
            [table],
        ).fetchall()
        out: list[DataFile] = []
        for path, key1, delete, key2 in rows:
            if "://" in path or key1 is not None or key2 is not None or (delete and not delete.endswith(".parquet")):
                return None
            out.append(DataFile(path, delete))
        return out

    def info(self, path: str, table: str) -> FileInfo:
        with self._lock:
            info = self._infos.get(path)
            if info is not None:
                self._infos.move_to_end(path)
                return info
        info = _read_info(path, self._stats_columns.get(table, ()))
        with self._lock:
            self._infos[path] = info
            while len(self._infos) > MAX_CACHED_FILES:
                self._infos.popitem(last=False)
        return info

    def operations(self, f: DataFile) -> frozenset[tuple[str, str, int]]:
        """Distinct (service name, span name, kind) of a span file, its deleted rows left out."""
        key = f"{f.path}|{f.delete_path}"
        with self._lock:
            ops = self._operations.get(key)
            if ops is not None:
                return ops
        t = pq.read_table(f.path, columns=["service_name", "name", "kind"])
        if f.delete_path:
            t = t.filter(pa.array(~np.isin(np.arange(t.num_rows), self.deleted_rows(f.delete_path))))
        t = t.group_by(["service_name", "name", "kind"]).aggregate([])
        ops = frozenset(zip(t.column("service_name").to_pylist(), t.column("name").to_pylist(), t.column("kind").to_pylist()))
        with self._lock:
            self._operations[key] = ops
            while len(self._operations) > MAX_CACHED_FILES:
                self._operations.popitem(last=False)
        return ops

    def nested_keys(self, cur: duckdb.DuckDBPyConnection, path: str, where: str) -> frozenset[str]:
        """Distinct attribute keys of the events (``where`` = ``event``) or links (``link``) of
        a span file, deleted rows included. Events and links are few, so one scan of their
        column per file is cheap; their key statistics rarely rule a key out on their own."""
        key = f"{path}|{where}"
        with self._lock:
            keys = self._nested_keys.get(key)
            if keys is not None:
                return keys
        column = {"event": "events", "link": "links"}[where]
        rows = cur.execute(
            f"SELECT DISTINCT unnest(flatten(list_transform({column}, x -> map_keys(x.attributes)))) FROM read_parquet(?)",
            [path],
        ).fetchall()
        keys = frozenset(r[0] for r in rows if r[0] is not None)
        with self._lock:
            self._nested_keys[key] = keys
            while len(self._nested_keys) > 2 * MAX_CACHED_FILES:
                self._nested_keys.popitem(last=False)
        return keys

    def deleted_rows(self, delete_path: str) -> np.ndarray:
        """Sorted positions of deleted rows listed in a DuckLake delete file."""
        with self._lock:
            pos = self._deletes.get(delete_path)
            if pos is not None:
                return pos
        pos = np.sort(pq.read_table(delete_path, columns=["pos"]).column("pos").to_numpy())
        with self._lock:
            self._deletes[delete_path] = pos
            while len(self._deletes) > MAX_CACHED_FILES:
                self._deletes.popitem(last=False)
        return pos


def _read_info(path: str, stats_columns: tuple[str, ...]) -> FileInfo:
    md = pq.ParquetFile(path).metadata
    names = [md.schema.column(j).path.split(".")[0] for j in range(md.num_columns)]
    index = {md.schema.column(j).path: j for j in range(md.num_columns)}
    n = md.num_row_groups
    rows = np.array([md.row_group(i).num_rows for i in range(n)], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64) if n else rows
    mins: dict[str, np.ndarray] = {}
    maxs: dict[str, np.ndarray] = {}
    for col in stats_columns:
        j = index.get(col)
        if j is None:
            continue
        stats = [md.row_group(i).column(j).statistics for i in range(n)]
        known = [st if st is not None and st.has_min_max else None for st in stats]
        if md.schema.column(j).physical_type == "INT64":
            mins[col] = np.array([st.min if st else np.iinfo(np.int64).min for st in known], dtype=np.int64)
            maxs[col] = np.array([st.max if st else np.iinfo(np.int64).max for st in known], dtype=np.int64)
        else:
            lo = [_bytes(st.min) if st else b"" for st in known]
            hi = [_bytes(st.max) if st else None for st in known]
            top = b"\xff" * (max((len(v) for v in lo + hi if v), default=0) + 1)
            mins[col] = np.array(lo, dtype=f"S{len(top)}")
            maxs[col] = np.array([v if v is not None else top for v in hi], dtype=f"S{len(top)}")
    key_bounds: dict[str, list[tuple[str, str]] | None] = {}
    for where, leaf in KEY_LEAVES.items():
        j = index.get(leaf)
        bounds: list[tuple[str, str]] | None = []
        for i in range(n if j is not None else 0):
            chunk = md.row_group(i).column(j)
            st = chunk.statistics
            if st is not None and st.has_null_count and st.null_count == chunk.num_values:
                continue  # no keys at all in this row group
            if st is None or not st.has_min_max:
                bounds = None
                break
            bounds.append((_text(st.min), _text(st.max)))  # type: ignore[union-attr]
        key_bounds[where] = None if j is None else bounds
    all_null: dict[str, np.ndarray] = {}
    for leaf, j in index.items():
        if "." in leaf:
            continue
        stats = [md.row_group(i).column(j).statistics for i in range(n)]
        all_null[leaf] = np.array(
            [st is not None and st.has_null_count and st.null_count == rows[i] for i, st in enumerate(stats)], dtype=bool
        )
    return FileInfo(path, md, list(dict.fromkeys(names)), offsets, rows, mins, maxs, key_bounds, all_null)


def _text(v: Any) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)


def _bytes(v: Any) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)
