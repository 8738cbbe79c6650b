"""Log commits the cheap way: Parquet written by pyarrow and registered with DuckLake.

As for spans (``parquet_append.py``), ``INSERT INTO lake.logs`` makes DuckDB encode the
Parquet file, several times slower than pyarrow; on a local data path the writer instead adds
the two derived key columns here (what ``logs_sql.insert_logs_sql`` computes with ``hex()``),
writes the file with pyarrow and registers it with ``ducklake_add_data_files`` in the commit's
transaction, so an acknowledged batch is as durable as with INSERT. The trace index rows (one
per trace of the commit) are aggregated here too and inserted as a small table.

Object storage (``s3://``...) keeps the INSERT statements of ``logs_sql``.
"""

from __future__ import annotations

import os
import uuid

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per Parquet row group of log files: DuckDB's default, which DuckLake's INSERT and
#: compaction use for the logs table (searches scan time ranges; trace lookups go through
#: ``log_trace_index`` and the time statistics).
LOG_ROW_GROUP_ROWS = 122_880

#: Columns whose values rarely repeat: dictionary encoding would only be tried and dropped
#: (pyarrow falls back page by page, keeping the failed dictionary's cost). Times get delta
#: encoding instead. Measured on ``bench/log_workload.py`` commits of 4,096 records: 39 bytes
#: per record against 48 with pyarrow's defaults and 42 for DuckDB's own writer.
_NO_DICTIONARY = {"time_ns", "observed_time_ns", "log_id", "body"}
_DELTA = {"time_ns": "DELTA_BINARY_PACKED", "observed_time_ns": "DELTA_BINARY_PACKED"}

#: Byte -> its two upper-case hex digits.
_HEX = np.frombuffer(b"".join(f"{b:02X}".encode() for b in range(256)), np.uint8).reshape(256, 2)


def hex_keys(ids: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Upper-case hex of every binary id, NULL for NULL: DuckDB's ``hex()``, vectorised."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.chunk(0) if ids.num_chunks == 1 else pa.concat_arrays(ids.chunks or [pa.array([], pa.binary())])
    if len(ids) == 0:
        return pa.array([], pa.string())
    if ids.offset:
        ids = pa.concat_arrays([ids])  # buffers from offset 0
    n = len(ids)
    validity, offsets_buf, data_buf = ids.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, n + 1)
    start, end = int(offsets[0]), int(offsets[-1])
    raw = np.frombuffer(data_buf, np.uint8, end)[start:] if end else np.zeros(0, np.uint8)
    text = _HEX[raw].ravel()
    new_offsets = ((offsets - start) * 2).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(text), validity, ids.null_count)


def with_keys(logs: pa.Table) -> pa.Table:
    """``logs`` with the ``trace_key`` and ``span_key`` columns of ``lake.logs``."""
    return logs.append_column("trace_key", hex_keys(logs.column("trace_id"))).append_column(
        "span_key", hex_keys(logs.column("span_id"))
    )


def index_rows(keyed: pa.Table) -> pa.Table:
    """Rows of ``lake.log_trace_index`` for the records of a commit: per trace, the time range."""
    grouped = (
        keyed.select(["trace_key", "time_ns"])
        .filter(keyed.column("trace_key").is_valid())
        .group_by("trace_key", use_threads=False)
        .aggregate([("time_ns", "min"), ("time_ns", "max")])
    )
    return pa.table({
        "trace_key": grouped.column("trace_key"),
        "min_time_ns": grouped.column("time_ns_min"),
        "max_time_ns": grouped.column("time_ns_max"),
    })


def append_logs(cur: duckdb.DuckDBPyConnection, data_path: str, keyed: pa.Table) -> str:
    """Write ``keyed`` (from :func:`with_keys`) as one Parquet file under ``data_path`` and add
    it to ``lake.logs`` in the caller's transaction. Returns the file's path."""
    folder = os.path.join(data_path.removeprefix("file://"), "main", "logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"spanlake-{uuid.uuid4().hex}.parquet")
    dictionary = [c for c in keyed.column_names if c not in _NO_DICTIONARY]
    pq.write_table(keyed, path, compression="zstd", row_group_size=LOG_ROW_GROUP_ROWS, write_statistics=True,
                   use_dictionary=dictionary, column_encoding=_DELTA)
    cur.execute("CALL ducklake_add_data_files('lake', 'logs', ?)", [path])
    return path
