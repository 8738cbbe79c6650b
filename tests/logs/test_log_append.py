"""Log commits through pyarrow + ``ducklake_add_data_files``: the derived key columns and index
rows are what the INSERT statements of ``logs_sql`` compute in DuckDB."""

from __future__ import annotations

import os

import duckdb
import pyarrow as pa

from spanlake.collector.decode_logs import decode_logs_protobuf
from spanlake.log_model import LogBatch
from spanlake.storage.ducklake import logs_append, logs_sql
from tests.logs.otlp_logs import make_log, make_logs_request


def _batch() -> LogBatch:
    tids = [os.urandom(16) for _ in range(3)]
    records = [make_log(f"r{i}", time_ns=1_000 + i, trace_id=tids[i % 3] if i % 4 else b"",
                        span_id=os.urandom(8) if i % 5 else b"") for i in range(40)]
    half = [decode_logs_protobuf(make_logs_request("keys", records[i:i + 20]).SerializeToString()).batch
            for i in (0, 20)]
    return LogBatch.concat(half)  # two chunks, as a commit of two requests


def test_keys_and_index_rows_match_duckdbs() -> None:
    logs = _batch().logs
    con = duckdb.connect()
    con.register("_batch_logs", logs)
    want_keys = con.execute("SELECT hex(trace_id), hex(span_id) FROM _batch_logs").fetchall()
    keyed = logs_append.with_keys(logs)
    assert list(zip(keyed.column("trace_key").to_pylist(), keyed.column("span_key").to_pylist())) == want_keys
    assert keyed.column_names == logs.column_names + ["trace_key", "span_key"]

    sql = logs_sql.insert_log_index_rows_sql("_batch_logs").split("\n", 1)[1]  # the SELECT
    want_index = sorted(con.execute(sql).fetchall())
    assert sorted(map(tuple, (r.values() for r in logs_append.index_rows(keyed).to_pylist()))) == want_index


def test_hex_keys_of_slices_nulls_and_empty_arrays() -> None:
    ids = pa.chunked_array([pa.array([b"\x00\xff", None, b"\xab"], pa.binary()).slice(1), pa.array([], pa.binary())])
    assert logs_append.hex_keys(ids).to_pylist() == [None, "AB"]
    assert logs_append.hex_keys(pa.chunked_array([], pa.binary())).to_pylist() == []
