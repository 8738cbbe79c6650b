"""The read path of the DuckLake store's logs: search with cursors, histograms, logs of a trace.

Like ``reader.LakeReader``: every method takes the calling thread's own cursor and reads the
latest snapshot; methods of several statements run them in one read transaction (one snapshot,
and DuckLake loads its metadata once). Resource and scope rows are cached by id: an id is a
fingerprint of the content, so its row never changes.

Newest-first search reads the range backwards in windows (the last 1/64 of it, then four times
wider each step) until the page is full: a page of recent logs reads the newest files only,
since the ``time_ns`` statistics of older files exclude them. Each window finds the keys
``(time_ns, log_id)`` of its records; the page's rows are then read by key. A trace id in a search, and the
logs of a trace, first take the trace's time range from ``log_trace_index``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa

from spanlake.log_model import LogRecord, logs_from_arrow
from spanlake.model import RESOURCE_SCHEMA, SCOPE_SCHEMA
from spanlake.storage.api import (
    InvalidLogQuery,
    LogBucket,
    LogPage,
    LogQuery,
    decode_log_cursor,
    encode_log_cursor,
)
from spanlake.storage.ducklake import logs_sql

#: Resource and scope rows kept per kind before the cache starts over.
CACHE_MAX_IDS = 50_000
#: The first search window is this fraction of the range (at least ``MIN_WINDOW_NS``).
FIRST_WINDOW_FRACTION = 64
MIN_WINDOW_NS = 1_000_000_000

Cursor = Callable[[], duckdb.DuckDBPyConnection]


class LogsReader:
    """Reads through ``cursor()``, which returns a cursor owned by the calling thread."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor
        self._cache_lock = threading.Lock()
        self._resources: dict[int, dict[str, Any]] = {}
        self._scopes: dict[int, dict[str, Any]] = {}

    def search_logs(self, query: LogQuery) -> LogPage:
        cur = self._cursor()
        _validate(cur, query)
        limit = max(0, query.limit)
        if limit == 0:
            return LogPage([], None)
        with _read_transaction(cur):
            narrowed = self._within_trace(cur, query)
            if narrowed is None:
                return LogPage([], None)
            # One row more than asked tells whether another page exists.
            keys = self._newest_first(cur, narrowed, limit + 1)
            more = len(keys) > limit
            keys = keys[:limit]
            rows = cur.execute(*logs_sql.logs_by_keys_sql(keys)).to_arrow_table() if keys else pa.table({})
            records = self._records(cur, rows)[:limit]
        last = records[-1] if more else None
        return LogPage(records, encode_log_cursor(last.time_ns, last.log_id) if last else None)

    def _within_trace(self, cur: duckdb.DuckDBPyConnection, query: LogQuery) -> LogQuery | None:
        """The query with its range cut to the trace's records; None when there are none."""
        if query.trace_id is None:
            return query
        first, last = cur.execute(*logs_sql.log_trace_range_sql(query.trace_id)).fetchone()  # type: ignore[misc]
        if first is None:
            return None
        start = first if query.start_ns is None else max(query.start_ns, first)
        end = last + 1 if query.end_ns is None else min(query.end_ns, last + 1)
        return dataclasses.replace(query, start_ns=start, end_ns=end) if start < end else None

    def _newest_first(self, cur: duckdb.DuckDBPyConnection, query: LogQuery, need: int) -> list[tuple[int, int]]:
        """Keys of the first ``need`` matching records, newest first."""
        if query.start_ns is None or query.end_ns is None:
            return cur.execute(*logs_sql.search_log_keys_sql(query, need)).fetchall()
        start, high = query.start_ns, query.end_ns
        if query.cursor:
            high = min(high, decode_log_cursor(query.cursor)[0] + 1)
        width = max((high - start) // FIRST_WINDOW_FRACTION, MIN_WINDOW_NS)
        keys: list[tuple[int, int]] = []
        while high > start and len(keys) < need:
            low = max(start, high - width)
            window = dataclasses.replace(query, start_ns=low, end_ns=high)
            keys += cur.execute(*logs_sql.search_log_keys_sql(window, need - len(keys))).fetchall()
            high, width = low, width * 4
        return keys

    def log_histogram(self, query: LogQuery, step_ns: int) -> list[LogBucket]:
        if step_ns <= 0:
            raise InvalidLogQuery("step_ns", "the histogram step must be positive")
        cur = self._cursor()
        _validate(cur, query)
        return [LogBucket(b, n) for b, n in cur.execute(*logs_sql.log_histogram_sql(query, step_ns)).fetchall()]

    def logs_for_trace(self, trace_id: bytes) -> list[LogRecord]:
        if not isinstance(trace_id, bytes) or not trace_id:
            return []
        cur = self._cursor()
        with _read_transaction(cur):
            first, last = cur.execute(*logs_sql.log_trace_range_sql(trace_id)).fetchone()  # type: ignore[misc]
            if first is None:
                return []
            return self._records(cur, cur.execute(*logs_sql.trace_logs_sql(trace_id, first, last)).to_arrow_table())

    # -- rows to records --------------------------------------------------------------------

    def _records(self, cur: duckdb.DuckDBPyConnection, logs: pa.Table) -> list[LogRecord]:
        if not logs.num_rows:
            return []
        resources = self._side_rows(cur, logs, "resource_id", self._resources, logs_sql.resources_sql, RESOURCE_SCHEMA)
        scopes = self._side_rows(cur, logs, "scope_id", self._scopes, logs_sql.scopes_sql, SCOPE_SCHEMA)
        return logs_from_arrow(logs, resources, scopes)

    def _side_rows(
        self,
        cur: duckdb.DuckDBPyConnection,
        logs: pa.Table,
        id_col: str,
        cache: dict[int, dict[str, Any]],
        sql_fn: Callable[[list[int]], tuple[str, list[Any]]],
        schema: pa.Schema,
    ) -> pa.Table:
        ids = set(logs.column(id_col).to_pylist())
        with self._cache_lock:
            missing = [i for i in ids if i not in cache]
        if missing:
            rows = cur.execute(*sql_fn(missing)).to_arrow_table().to_pylist()
            with self._cache_lock:
                if len(cache) + len(rows) > CACHE_MAX_IDS:
                    cache.clear()
                for row in rows:
                    cache.setdefault(row[id_col], row)
        with self._cache_lock:
            found = [cache[i] for i in ids if i in cache]
        return pa.Table.from_pylist(found, schema=schema)


@contextlib.contextmanager
def _read_transaction(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    cur.execute("BEGIN TRANSACTION")
    try:
        yield
        cur.execute("COMMIT")
    except BaseException:
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise


def _validate(cur: duckdb.DuckDBPyConnection, query: LogQuery) -> None:
    """Raise :class:`InvalidLogQuery` for a cursor or a regular expression that cannot work,
    before they fail deep inside a scan."""
    if query.cursor:
        try:
            decode_log_cursor(query.cursor)
        except ValueError as e:
            raise InvalidLogQuery("cursor", str(e)) from None
    if query.body_regex is not None:
        try:
            cur.execute(*logs_sql.regex_check_sql(query.body_regex)).fetchall()
        except duckdb.InvalidInputException as e:
            raise InvalidLogQuery("body_regex", f"invalid regular expression: {e}") from None
