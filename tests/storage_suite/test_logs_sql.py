"""Snapshots of the SQL the DuckLake store generates for logs (``logs_sql``), and its invariants.

A changed statement fails here with a diff; after checking it, regenerate the snapshots with
``SPANLAKE_UPDATE_SNAPSHOTS=1 pytest tests/storage_suite/test_logs_sql.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from spanlake.storage.api import LogQuery, encode_log_cursor
from spanlake.storage.ducklake import logs_sql

SNAPSHOTS = Path(__file__).parent / "sql_snapshots" / "logs"
UPDATE = os.environ.get("SPANLAKE_UPDATE_SNAPSHOTS") == "1"
TID = bytes(range(16))

CASES: dict[str, tuple[str, list[Any]]] = {
    "insert": (logs_sql.insert_logs_sql("_batch_logs"), []),
    "search_time_service_severity": logs_sql.search_log_keys_sql(
        LogQuery(start_ns=1, end_ns=2, service_name="cart", min_severity=13), 101
    ),
    "search_body": logs_sql.search_log_keys_sql(LogQuery(body_contains="50%_off", body_regex="^a.*b$"), 11),
    "search_ids_cursor": logs_sql.search_log_keys_sql(
        LogQuery(trace_id=TID, span_id=TID[:8], cursor=encode_log_cursor(5, 7)), 11
    ),
    "search_attributes": logs_sql.search_log_keys_sql(
        LogQuery(attributes=(("user", "42"), ("resource.host.name", "h"), ("scope.name", "s"),
                             ("scope.version", "1"), ("event.name", "e"), ("tags", '["x"]'))),
        11,
    ),
    "logs_by_keys": logs_sql.logs_by_keys_sql([(5, 7), (3, 2**64 - 1)]),
    "histogram": logs_sql.log_histogram_sql(LogQuery(start_ns=100, service_name="cart"), 60),
    "trace_logs": logs_sql.trace_logs_sql(TID, 10, 20),
    "log_trace_range": logs_sql.log_trace_range_sql(TID),
    "insert_log_index": (logs_sql.insert_log_index_rows_sql("_batch_logs"), []),
    "retention_delete_logs": logs_sql.delete_logs_sql(5),
    "retention_delete_log_index": logs_sql.delete_log_index_rows_sql(5),
}


def _render(sql: str, params: list[Any]) -> str:
    shown = [p.hex() if isinstance(p, bytes) else p for p in params]
    return f"{sql.strip()}\n-- params: {json.dumps(shown)}\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_sql_snapshot(name: str) -> None:
    sql, params = CASES[name]
    path = SNAPSHOTS / f"{name}.sql"
    text = _render(sql, params)
    if UPDATE or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"snapshot {path.name} was missing and has been written; rerun")
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_value_is_a_bound_parameter(name: str) -> None:
    sql, params = CASES[name]
    assert sql.count("?") == len(params)
    for p in params:
        if isinstance(p, str) and len(p) > 1:
            assert p not in sql, f"value {p!r} was interpolated into the SQL"


def test_ids_are_looked_up_by_hex_key_never_as_blobs() -> None:
    for name in ("search_ids_cursor", "trace_logs", "log_trace_range"):
        sql, params = CASES[name]
        assert "trace_key = ?" in sql and "trace_id =" not in sql
        assert TID.hex().upper() in params
