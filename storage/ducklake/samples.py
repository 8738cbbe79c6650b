"""Metric samples in DuckLake: the ``samples`` table, its 5-minute rollup, a writer and queries.

Tables (created on first use, in one transaction, by whichever process gets there first):

* ``lake.samples``: rows of :data:`spanlake.metrics_model.SAMPLE_SCHEMA` as written: labels as
  a ``MAP(VARCHAR, VARCHAR)`` next to a 64-bit ``series_id`` (dictionary-compressed in Parquet,
  so repeating the labels on every row costs little and no series table has to be kept in
  step across processes).
* ``lake.samples_5m``: the same rows combined per series and 5-minute window (deltas summed,
  the others' latest row kept, the last 32 exemplars), with ``time_ns`` the window's latest
  row time. ``lake.sample_rollups`` holds the watermark: windows before it are rolled up.

Writes come every aggregation interval (15 s) per process plus OTLP metric exports, so a small
group-commit thread of its own (:class:`SampleWriter`) inserts them directly as Parquet.

Queries combine rows per series and step in SQL (:func:`query_sql`). A query whose start and
step are multiples of 5 minutes reads rolled-up windows below the watermark and raw rows above
it in one statement (one snapshot), so it returns exactly what raw rows would give, as long as
no raw row arrived after its window was rolled up: windows are rolled up once they ended
:data:`ROLLUP_LAG_NS` ago. Only the process that runs maintenance rolls up; a concurrent
rollup elsewhere conflicts on the watermark row and retries. Raw rows older than the store's
retention are deleted once rolled up (hourly); the rollup is kept, at 1/20 of the raw rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable

import duckdb
import pyarrow as pa

from spanlake.metrics_model import DELTA_HISTOGRAM, HISTOGRAM_KINDS, SampleBatch
from spanlake.storage.api import (
    SampleQuery,
    SampleSeries,
    StoreClosed,
    StoreError,
    WriteQueueFull,
)
from spanlake.storage.ducklake.writer import run_transaction
from spanlake.storage.samples_common import NAME_LABEL, check_query, latest_per_bucket, sort_series

log = logging.getLogger(__name__)

ROLLUP_NS = 300 * 1_000_000_000
#: A window is rolled up once it ended this long ago (late OTLP exports and slow flushes of
#: other processes still land in raw rows before that).
ROLLUP_LAG_NS = 600 * 1_000_000_000
ROLLUP_EVERY_S = 60.0
PRUNE_EVERY_S = 3600.0
_ROLLUP_EXEMPLARS = 32

_COLUMNS = """
    metric VARCHAR,
    series_id UBIGINT,
    labels MAP(VARCHAR, VARCHAR),
    kind VARCHAR,
    monotonic BOOLEAN,
    time_ns BIGINT,
    start_ns BIGINT,
    value DOUBLE,
    count DOUBLE,
    bounds DOUBLE[],
    buckets DOUBLE[],
    exemplars STRUCT(bucket INTEGER, value DOUBLE, time_ns BIGINT, trace_id VARCHAR, span_id VARCHAR)[]
"""

SCHEMA_SQL = (
    f"CREATE TABLE IF NOT EXISTS lake.samples ({_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS lake.samples_5m ({_COLUMNS})",
    "CREATE TABLE IF NOT EXISTS lake.sample_rollups (name VARCHAR, done_until_ns BIGINT)",
    # The watermark row exists from the start, so concurrent rollups conflict on its UPDATE.
    "INSERT INTO lake.sample_rollups VALUES ('5m', NULL)",
    # Merged files come out sorted, so min/max statistics prune by metric and time.
    "ALTER TABLE lake.samples SET SORTED BY (metric, time_ns)",
    "ALTER TABLE lake.samples_5m SET SORTED BY (metric, time_ns)",
)
TABLES = ("samples", "samples_5m", "sample_rollups")


def tables_missing(cur: duckdb.DuckDBPyConnection) -> bool:
    rows = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'main'"
    ).fetchall()
    return bool(set(TABLES) - {r[0] for r in rows})


def ensure_schema(cur: duckdb.DuckDBPyConnection) -> None:
    def body(c: duckdb.DuckDBPyConnection) -> None:
        if not tables_missing(c):  # another process created them while we waited
            return
        for stmt in SCHEMA_SQL:
            c.execute(stmt)

    if tables_missing(cur):
        try:
            run_transaction(cur, body, attempts=20)
        except duckdb.Error as exc:
            # Another process created them in the same instant and won the commit.
            if "already exists" not in str(exc).lower() or tables_missing(cur):
                raise


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def _matcher_sql(name: str, op: str) -> str:
    value = "metric" if name == NAME_LABEL else "coalesce(labels[?], '')"
    return {
        "=": f"{value} = ?",
        "!=": f"{value} <> ?",
        "=~": f"regexp_full_match({value}, ?)",
        "!~": f"NOT regexp_full_match({value}, ?)",
    }[op]


def _source_sql(use_rollup: bool) -> str:
    if not use_rollup:
        return "lake.samples"
    return (
        "(WITH w AS (SELECT coalesce(max(done_until_ns), -9223372036854775808) AS w FROM lake.sample_rollups) "
        "SELECT r.* FROM lake.samples_5m r, w WHERE r.time_ns < w.w "
        "UNION ALL SELECT s.* FROM lake.samples s, w WHERE s.time_ns >= w.w)"
    )


def query_sql(q: SampleQuery, *, source: str, exemplars: bool | None = None) -> tuple[str, list[Any]]:
    """Rows of ``source`` matching ``q``, combined per (series, kind, step, bounds), ordered."""
    where = ["time_ns >= ?", "time_ns < ?"]
    params: list[Any] = [q.start_ns, q.step_ns, q.start_ns, q.end_ns]
    if q.metrics:
        where.append(f"metric IN ({', '.join('?' for _ in q.metrics)})")
        params.extend(q.metrics)
    for m in q.matchers:
        where.append(_matcher_sql(m.name, m.op))
        if m.name != NAME_LABEL:
            params.append(m.name)
        params.append(m.value)
    want_exemplars = q.exemplars if exemplars is None else exemplars
    ex = ", flatten(list(exemplars ORDER BY time_ns)) AS exemplars" if want_exemplars else ""
    sql = f"""
WITH f AS (
    SELECT *, (time_ns - ?) // ? AS step_idx FROM {source} WHERE {' AND '.join(where)}
),
agg AS (
    SELECT metric, series_id, kind, step_idx, bounds,
        any_value(labels) AS labels,
        bool_or(monotonic) AS monotonic,
        max(time_ns) AS last_ns,
        arg_max(start_ns, time_ns) AS start_ns,
        CASE WHEN kind IN ('delta', 'delta_histogram') THEN sum(value) ELSE arg_max(value, time_ns) END AS value,
        CASE WHEN kind = 'delta_histogram' THEN sum(count) ELSE arg_max(count, time_ns) END AS count,
        arg_max(buckets, time_ns) AS last_buckets{ex}
    FROM f GROUP BY metric, series_id, kind, step_idx, bounds
),
hb AS (
    SELECT metric, series_id, step_idx, bounds, list(c ORDER BY i) AS summed FROM (
        SELECT metric, series_id, step_idx, bounds, i, sum(c) AS c FROM (
            SELECT metric, series_id, step_idx, bounds, unnest(buckets) AS c, generate_subscripts(buckets, 1) AS i
            FROM f WHERE kind = 'delta_histogram'
        ) GROUP BY ALL
    ) GROUP BY ALL
)
SELECT agg.*, CASE WHEN agg.kind = 'delta_histogram' THEN coalesce(hb.summed, []) ELSE agg.last_buckets END AS buckets
FROM agg LEFT JOIN hb USING (metric, series_id, step_idx, bounds)
ORDER BY metric, series_id, kind, step_idx, last_ns
"""
    return sql, params


def uses_rollup(q: SampleQuery) -> bool:
    return q.step_ns % ROLLUP_NS == 0 and q.start_ns % ROLLUP_NS == 0


def rows_to_series(table: pa.Table, q: SampleQuery) -> list[SampleSeries]:
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    out: dict[tuple, SampleSeries] = {}
    for i in range(table.num_rows):
        metric, sid, kind, step = cols["metric"][i], cols["series_id"][i], cols["kind"][i], cols["step_idx"][i]
        key = (metric, sid, kind)
        s = out.get(key)
        hist = kind in HISTOGRAM_KINDS
        if s is None:
            s = out[key] = SampleSeries(
                metric, dict(cols["labels"][i] or {}), kind, bool(cols["monotonic"][i]),
                counts=[] if hist else None, bounds=[] if hist else None, buckets=[] if hist else None,
                exemplars=[] if q.exemplars else None,
            )
        t = q.start_ns + step * q.step_ns
        if s.times_ns and s.times_ns[-1] == t:
            # The same step with other histogram bounds: rows are ordered by last_ns, keep the later.
            for lst in (s.times_ns, s.last_ns, s.start_ns, s.values, s.counts, s.bounds, s.buckets, s.exemplars):
                if lst is not None:
                    lst.pop()
        s.monotonic = s.monotonic or bool(cols["monotonic"][i])
        s.times_ns.append(t)
        s.last_ns.append(cols["last_ns"][i])
        s.start_ns.append(cols["start_ns"][i] or 0)
        s.values.append(cols["value"][i])
        if hist:
            assert s.counts is not None and s.bounds is not None and s.buckets is not None
            s.counts.append(cols["count"][i] or 0.0)
            s.bounds.append(list(cols["bounds"][i] or []))
            s.buckets.append(list(cols["buckets"][i] or []))
        if s.exemplars is not None:
            s.exemplars.append(latest_per_bucket(cols["exemplars"][i] or []))
    return sort_series(list(out.values()))


def run_query(cur: duckdb.DuckDBPyConnection, q: SampleQuery, *, tables_known: bool = False) -> list[SampleSeries]:
    check_query(q)
    if not tables_known and tables_missing(cur):
        return []
    sql, params = query_sql(q, source=_source_sql(uses_rollup(q)))
    return rows_to_series(cur.execute(sql, params).to_arrow_table(), q)


# ---------------------------------------------------------------------------------------------
# Rollup
# ---------------------------------------------------------------------------------------------


def rollup(cur: duckdb.DuckDBPyConnection, now_ns: int, lag_ns: int = ROLLUP_LAG_NS) -> int:
    """Roll up every 5-minute window that ended ``lag_ns`` before ``now_ns`` and is not yet;
    returns the number of rollup rows written."""
    until = (now_ns - lag_ns) // ROLLUP_NS * ROLLUP_NS

    def body(c: duckdb.DuckDBPyConnection) -> int:
        (done,) = c.execute("SELECT max(done_until_ns) FROM lake.sample_rollups WHERE name = '5m'").fetchone()  # type: ignore[misc]
        if done is None:
            (first,) = c.execute("SELECT min(time_ns) FROM lake.samples").fetchone()  # type: ignore[misc]
            if first is None:
                return 0
            done = first // ROLLUP_NS * ROLLUP_NS
        if until <= done:
            return 0
        q = SampleQuery(metrics=(), start_ns=done, end_ns=until, step_ns=ROLLUP_NS)
        select, params = query_sql(q, source="lake.samples", exemplars=True)
        (rows,) = c.execute(
            f"""INSERT INTO lake.samples_5m BY NAME
            SELECT metric, series_id, labels, kind, monotonic, last_ns AS time_ns, start_ns, value, count, bounds,
                   buckets, exemplars[-{_ROLLUP_EXEMPLARS}:] AS exemplars
            FROM ({select})""",
            params,
        ).fetchone()  # type: ignore[misc]
        c.execute("UPDATE lake.sample_rollups SET done_until_ns = ? WHERE name = '5m'", [until])
        return int(rows)

    return run_transaction(cur, body)


def prune(cur: duckdb.DuckDBPyConnection, now_ns: int, raw_retention_ns: int) -> int:
    """Delete raw rows older than ``raw_retention_ns`` that the rollup already holds (rolled-up
    windows are kept); returns the number of rows deleted."""

    def body(c: duckdb.DuckDBPyConnection) -> int:
        (done,) = c.execute("SELECT max(done_until_ns) FROM lake.sample_rollups WHERE name = '5m'").fetchone()  # type: ignore[misc]
        if done is None:
            return 0
        cutoff = min(done, (now_ns - raw_retention_ns) // ROLLUP_NS * ROLLUP_NS)
        (deleted,) = c.execute("DELETE FROM lake.samples WHERE time_ns < ?", [cutoff]).fetchone()  # type: ignore[misc]
        return int(deleted)

    return run_transaction(cur, body)


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


class SampleWriter:
    """A bounded queue of sample batches and the thread that commits them, several at a time."""

    def __init__(
        self,
        cur: duckdb.DuckDBPyConnection,
        *,
        rollup_enabled: bool,
        raw_retention_ns: int | None = None,
        max_queue_rows: int = 1_000_000,
        commit_interval_s: float = 0.05,
    ) -> None:
        self._cur = cur
        self._rollup_enabled = rollup_enabled
        self._raw_retention_ns = raw_retention_ns
        self._last_prune = 0.0
        self._max_rows = max_queue_rows
        self._interval = commit_interval_s
        self._cond = threading.Condition()
        self._queue: deque[tuple[SampleBatch | None, Future[None]]] = deque()
        self._rows = 0
        self._closing = False
        self._last_rollup = time.monotonic()
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="spanlake-sample-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: SampleBatch) -> "Future[None]":
        fut: Future[None] = Future()
        with self._cond:
            if self._closing:
                raise StoreClosed("the store is closed")
            if self._rows and self._rows + batch.num_samples > self._max_rows:
                raise WriteQueueFull(f"{self._rows} samples queued; limit {self._max_rows}")
            self._queue.append((batch, fut))
            self._rows += batch.num_samples
            self._cond.notify_all()
        return fut

    def flush(self) -> None:
        fut: Future[None] = Future()
        with self._cond:
            if self._closing and not self._thread.is_alive():
                return
            self._queue.append((None, fut))
            self._cond.notify_all()
        fut.result()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _take(self) -> list[tuple[SampleBatch | None, Future[None]]] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait(ROLLUP_EVERY_S if self._rollup_enabled else None)
                if not self._queue and self._rollup_enabled:
                    return []
            items = list(self._queue)
            self._queue.clear()
            self._rows = 0
            return items

    def _run(self) -> None:
        while True:
            if self._interval:
                time.sleep(self._interval)  # lets concurrent submissions join one commit
            items = self._take()
            if items is None:
                return
            batches = [b for b, _ in items if b is not None and b.num_samples]
            error: BaseException | None = None
            if batches:
                try:
                    self._commit(SampleBatch.concat(batches))
                    self.commits += 1
                except Exception as exc:  # every future of the group learns why
                    log.exception("commit of %d samples failed", sum(b.num_samples for b in batches))
                    error = exc if isinstance(exc, StoreError) else StoreError(f"commit failed: {exc}")
            for batch, fut in items:
                if batch is None or error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(error)
            self._maybe_rollup()

    def _commit(self, batch: SampleBatch) -> None:
        cur = self._cur
        cur.register("_batch_samples", batch.table)
        try:
            run_transaction(cur, lambda c: c.execute("INSERT INTO lake.samples BY NAME SELECT * FROM _batch_samples"))
        finally:
            cur.unregister("_batch_samples")

    def _maybe_rollup(self) -> None:
        if not self._rollup_enabled or time.monotonic() - self._last_rollup < ROLLUP_EVERY_S:
            return
        self._last_rollup = time.monotonic()
        try:
            rollup(self._cur, time.time_ns())
            if self._raw_retention_ns and time.monotonic() - self._last_prune > PRUNE_EVERY_S:
                self._last_prune = time.monotonic()
                prune(self._cur, time.time_ns(), self._raw_retention_ns)
        except Exception:
            log.exception("rolling up samples failed; will try again in %.0f s", ROLLUP_EVERY_S)


class SampleLake:
    """The samples part of a DuckLake store; reads through ``read_cursor`` (one per thread)."""

    def __init__(
        self,
        read_cursor: Callable[[], duckdb.DuckDBPyConnection],
        write_cursor: duckdb.DuckDBPyConnection | None,
        *,
        rollup_enabled: bool,
        raw_retention_ns: int | None = None,
    ) -> None:
        self._read_cursor = read_cursor
        self._write_cursor = write_cursor
        self._raw_retention_ns = raw_retention_ns
        self._writer: SampleWriter | None = None
        self._tables_known = False  # tables never go away once they exist
        if write_cursor is not None:
            ensure_schema(write_cursor)
            self._tables_known = True
            self._writer = SampleWriter(write_cursor, rollup_enabled=rollup_enabled,
                                        raw_retention_ns=raw_retention_ns)

    def write(self, batch: SampleBatch) -> "Future[None]":
        if self._writer is None:
            raise StoreError("the store is read-only")
        return self._writer.submit(batch)

    def query(self, q: SampleQuery) -> list[SampleSeries]:
        cur = self._read_cursor()
        if not self._tables_known:
            check_query(q)
            if tables_missing(cur):
                return []
            self._tables_known = True
        return run_query(cur, q, tables_known=True)

    def rollup(self, now_ns: int | None = None, lag_ns: int = ROLLUP_LAG_NS) -> int:
        """Roll up closed windows, then delete raw rows past the retention; the rows written."""
        if self._write_cursor is None:
            raise StoreError("the store is read-only")
        if self._writer is not None:
            self._writer.flush()
        now = time.time_ns() if now_ns is None else now_ns
        written = rollup(self._read_cursor(), now, lag_ns)
        if self._raw_retention_ns:
            prune(self._read_cursor(), now, self._raw_retention_ns)
        return written

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


__all__ = ["SampleLake", "SampleWriter", "ensure_schema", "prune", "query_sql", "rollup", "run_query"]

#: Serialises the lazy creation of a store's :class:`SampleLake`.
INIT_LOCK = threading.Lock()
