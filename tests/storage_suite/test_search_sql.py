"""Snapshots of the SQL the DuckLake store generates (``search_sql``), and its invariants.

A changed statement fails here with a diff; after checking it, regenerate the snapshots with
``SPANLAKE_UPDATE_SNAPSHOTS=1 pytest tests/storage_suite/test_search_sql.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from spanlake.model import string_form
from spanlake.storage.api import TraceQuery
from spanlake.storage.ducklake import search_sql

SNAPSHOTS = Path(__file__).parent / "sql_snapshots"
UPDATE = os.environ.get("SPANLAKE_UPDATE_SNAPSHOTS") == "1"
TID = bytes(range(16))

CASES: dict[str, tuple[str, list[Any]]] = {
    "find_service_operation_duration": search_sql.find_traces_sql(
        TraceQuery(service_name="cart", operation_name="GET /cart", duration_min_ns=1_000_000, limit=20)
    ),
    "find_time_range_kind_unlimited": search_sql.find_traces_sql(
        TraceQuery(start_min_ns=1, start_max_ns=2, span_kind=2, duration_max_ns=5, limit=0)
    ),
    "find_plain_tag": search_sql.find_traces_sql(TraceQuery(attributes=(("customer", "42"),))),
    "find_promoted_tag": search_sql.find_traces_sql(TraceQuery(attributes=(("http.route", "/a"),))),
    "find_json_tag": search_sql.find_traces_sql(TraceQuery(attributes=(("tags", '["x"]'),))),
    "find_special_keys": search_sql.find_traces_sql(
        TraceQuery(
            attributes=(
                ("error", "true"),
                ("span.kind", "server"),
                ("span.status", "ok"),
                ("scope.name", "s"),
                ("scope.version", "1"),
                ("resource.host.name", "h"),
            )
        )
    ),
    "find_summaries": search_sql.find_traces_sql(TraceQuery(service_name="cart"), summaries=True),
    "trace_ranges": search_sql.trace_ranges_sql([TID]),
    "trace_spans": search_sql.trace_spans_sql([TID, TID[::-1]], 10, 20),
    "trace_summaries": search_sql.trace_summaries_sql([TID]),
    "operations_kind": search_sql.operations_sql("cart", 2),
    "services": search_sql.services_sql(),
    "dependencies": search_sql.dependencies_sql(1, 2),
    "dependencies_lost_parents": search_sql.lost_parents_sql(5, "_lost"),
    "candidates_window": search_sql.candidates_sql(
        TraceQuery(service_name="cart", attributes=(("customer", "42"),)), 10, 20, 49
    ),
    "candidates_open_start": search_sql.candidates_sql(TraceQuery(operation_name="GET /cart"), None, 20, 9),
    "latency_rows": search_sql.latency_rows_sql("cart", "GET /cart", 2, (("http.route", "/a"),), 1, 2, 100),
    "latency_rows_service_only": search_sql.latency_rows_sql("cart", None, None, (), 1, 2, 1_000_000),
    "index_rows": (search_sql.insert_index_rows_sql("_batch_spans"), []),
    "retention_straddling": search_sql.straddling_traces_sql(5),
    "retention_delete_spans": search_sql.delete_spans_sql(5),
    "retention_delete_index": search_sql.delete_index_rows_sql(5, "_straddling"),
    "retention_rebuild_index": search_sql.rebuild_index_rows_sql(5, "_straddling"),
    "archive": search_sql.archive_trace_sql(TID, 7),
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
        SNAPSHOTS.mkdir(exist_ok=True)
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


@pytest.mark.parametrize(
    "text", ["7", "-3", "0.5", "1", "1e3", "1.5e+20", "true", "false", "", "hello", "nan", "inf", "AAEC", "007"]
)
def test_tag_candidates_have_exactly_that_string_form(text: str) -> None:
    cands = search_sql.tag_value_candidates(text)
    assert cands and all(string_form(c) == text for c in cands)
    assert "s" + text in cands
