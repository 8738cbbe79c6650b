"""DuckLakeStore: the Store over DuckDB and DuckLake (SQLite or PostgreSQL catalog, Parquet data).

The store owns one in-memory DuckDB instance with the lake attached as ``lake``:

* one writer thread group-commits span and log batches (``writer.py``);
* readers use one cursor per thread (``reader.py``; logs: ``logs_reader.py``), so a threadpool
  reads while it writes;
* a maintenance thread compacts (and applies retention when configured) every
  ``maintenance_interval_s``.

Several processes may attach the same catalog; DuckLake serialises their commits through the
catalog database and we retry the ones that still conflict.

Data inlining is off (``DATA_INLINING_ROW_LIMIT 0``). DuckLake can keep small inserts as rows in
the catalog instead of Parquet files, but in 1.5.5 nested values go through a text form there
and do not come back: a link whose binary span id holds a quote or a brace fails to read
("can't be cast to STRUCT"). It would not pay anyway: measured here on a SQLite catalog,
inlining 512 spans costs 129 ms per commit against 21 ms for a Parquet file (50 spans: 31
against 20 ms). Under load a commit holds thousands of spans; trickle commits leave small files
that compaction merges.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import resources as importlib_resources
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.log_model import LOG_SCHEMA, LogBatch, LogRecord
from spanlake.metrics_model import SampleBatch
from spanlake.model import SPAN_SCHEMA, Span, SpanBatch, string_form
from spanlake.storage.api import (
    Capabilities,
    DependencyLink,
    FoundTrace,
    GetTrace,
    LogBucket,
    LogPage,
    LogQuery,
    Operation,
    SampleQuery,
    SampleSeries,
    StoreClosed,
    StoreError,
    StoreStats,
    TraceQuery,
    TraceSummary,
)
from spanlake.storage.ducklake import logs_append, logs_sql, parquet_append, samples, search_sql
from spanlake.storage.ducklake.catalog_stamp import catalog_stamp
from spanlake.storage.ducklake.extensions import connect
from spanlake.storage.ducklake.logs_reader import LogsReader
from spanlake.storage.ducklake.reader import LakeReader
from spanlake.storage.ducklake.value_index import ValueIndex
from spanlake.storage.ducklake.writer import (
    WRITER_NICENESS,
    GroupCommitWriter,
    SpanCommitter,
    WriteGroup,
    batch_rows,
    check_batch,
    check_log_batch,
    is_retryable,
    run_transaction,
)

log = logging.getLogger(__name__)

TABLES = ("spans", "resources", "scopes", "trace_index", "archived_traces", "logs", "log_trace_index")

# Orphaned files (written by a commit that failed, or by one still running in another process)
# are only removed once this old.
ORPHAN_MIN_AGE_S = 3600.0


@dataclass(frozen=True)
class DuckLakeOptions:
    """Configuration of a DuckLake store.

    ``catalog`` is a DuckLake catalog string without the ``ducklake:`` prefix, such as
    ``sqlite:/path/catalog.sqlite`` or ``postgres:dbname=spans host=db``; by default a SQLite
    file under ``data_dir``. ``data_path`` (a folder or an ``s3://`` URL) holds the Parquet files;
    by default ``<data_dir>/data/``. It is only used when the catalog is created.
    """

    data_dir: str
    catalog: str | None = None
    data_path: str | None = None
    memory_limit: str = "2GB"
    threads: int = 2
    max_queue_spans: int = 200_000
    commit_interval_ms: int = 50
    #: Under load, the least time between the starts of two commits (see ``writer.py``).
    commit_spacing_ms: int = 250
    commit_max_spans: int = 50_000
    read_only: bool = False
    retention_ns: int | None = None
    #: Seconds between background maintenance runs; 0 or less disables the thread.
    maintenance_interval_s: float = 300
    #: Snapshots older than this are expired by maintenance, and the files only they used are
    #: deleted; queries of other processes still reading such a snapshot would fail.
    cleanup_grace_s: float = 60.0


def _sql_literal(text: str) -> str:
    # ATTACH takes no bound parameters; these strings come from configuration, not requests.
    return "'" + text.replace("'", "''") + "'"


class DuckLakeStore:
    """The DuckLake implementation of :class:`spanlake.storage.api.Store`."""

    capabilities = Capabilities(trace_summaries=True, dependencies=True, retention=True, multi_process=True)

    def __init__(self, options: DuckLakeOptions) -> None:
        self.options = options
        self._data_dir = os.path.abspath(options.data_dir)
        os.makedirs(self._data_dir, exist_ok=True)
        self._catalog = options.catalog or f"sqlite:{os.path.join(self._data_dir, 'catalog.sqlite')}"
        if self._catalog.startswith("ducklake:"):
            self._catalog = self._catalog[len("ducklake:") :]
        self._data_path = options.data_path or os.path.join(self._data_dir, "data") + os.sep
        if "://" not in self._data_path:
            self._data_path = os.path.abspath(self._data_path) + os.sep
        self._closed = False
        self._lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._maintenance_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._con = connect(memory_limit=options.memory_limit, threads=options.threads)
        try:
            # Registered once: Python functions are visible to every cursor of the instance.
            self._con.create_function(
                search_sql.STRING_FORM_UDF, string_form, ["VARCHAR"], "VARCHAR", side_effects=False
            )
            self._attach()
            if not options.read_only:
                self._ensure_schema()
        except BaseException:
            self._con.close()
            raise
        # The reader keeps its own cursors, so that its read transactions never meet the
        # store's own (archive, retention) on one connection.
        # Value filters built by searches are kept under the data directory, outside the lake's
        # data path (whose orphan sweep would take them), across restarts.
        self._value_index = ValueIndex(os.path.join(self._data_dir, "filters"), save=not options.read_only)
        self._reader = LakeReader(self._new_cursor, catalog_stamp(self._catalog), self._value_index)
        self._logs_reader = LogsReader(self._cursor)
        self._writer: GroupCommitWriter | None = None
        if not options.read_only:
            committer = SpanCommitter(self._new_cursor(), self._data_path)
            self._writer = GroupCommitWriter(
                committer.commit,
                max_queue_spans=options.max_queue_spans,
                commit_interval_s=options.commit_interval_ms / 1000.0,
                commit_spacing_s=options.commit_spacing_ms / 1000.0,
                commit_max_spans=options.commit_max_spans,
                combine=WriteGroup.of,
                size=batch_rows,
                niceness=WRITER_NICENESS,
            )
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        if not options.read_only and options.maintenance_interval_s > 0:
            self._maintenance = threading.Thread(target=self._maintain, name="spanlake-maintenance", daemon=True)
            self._maintenance.start()

    # -- setup ------------------------------------------------------------------------------

    def _attach(self) -> None:
        con = self._con
        # DuckLake retries commits that lost a race for the next snapshot id; with several
        # receiver processes committing every few tens of ms, be patient but start quickly.
        con.execute("SET ducklake_max_retry_count = 50")
        con.execute("SET ducklake_retry_wait_ms = 10")
        con.execute("SET ducklake_retry_backoff = 1.5")
        opts = [f"DATA_PATH {_sql_literal(self._data_path)}", "DATA_INLINING_ROW_LIMIT 0"]
        if self.options.read_only:
            opts.append("READ_ONLY")
        if self._catalog.startswith("sqlite:") and not self.options.read_only:
            _use_wal(self._catalog[len("sqlite:") :])
        sql = f"ATTACH {_sql_literal('ducklake:' + self._catalog)} AS lake ({', '.join(opts)})"
        for attempt in range(20):
            try:
                con.execute(sql)
                return
            except duckdb.Error as exc:
                # Two processes creating the same new catalog at once: one loses, then attaches.
                if attempt == 19 or not (is_retryable(exc) or "already exists" in str(exc).lower()):
                    raise StoreError(f"cannot attach DuckLake catalog {self._catalog!r}: {exc}") from exc
                time.sleep(0.05 * (attempt + 1))

    def _ensure_schema(self) -> None:
        def missing() -> bool:
            rows = self._con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' AND schema_name = 'main'"
            ).fetchall()
            return bool(set(TABLES) - {r[0] for r in rows})

        def body(cur: duckdb.DuckDBPyConnection) -> None:
            if not missing():  # another process created them while we waited
                return
            for name in ("tables.sql", "options.sql"):
                for stmt in _statements(name):
                    cur.execute(stmt)

        if missing():
            run_transaction(self._con, body, attempts=20)
            # Read-path layout options; DuckLake refuses them in the transaction that creates
            # the tables.
            run_transaction(self._con, lambda cur: [cur.execute(s) for s in _statements("table_options.sql")], attempts=20)
        self._ensure_name_maps()

    def _ensure_name_maps(self) -> None:
        """Register the column mappings that span and log commit files use, before any commit
        needs them.

        ``ducklake_add_data_files`` gives each file a name map; the first commit creates it and
        later ones reuse it. When two processes both create the first map, DuckLake 1.5.5 can
        crash (SIGSEGV in ``DuckLakeCatalog::LoadNameMaps``, seen with ``--workers`` and in
        ``test_concurrent_writer_processes``). Registering an empty file per table here, in the
        process that opens the store first, creates each map once; the files are then deleted,
        since no data file refers to them.
        """
        if not parquet_append.is_local_path(self._data_path):
            return
        appenders = {
            "spans": lambda cur: parquet_append.append_table(cur, self._data_path, "spans", SPAN_SCHEMA.empty_table()),
            "logs": lambda cur: logs_append.append_logs(
                cur, self._data_path, logs_append.with_keys(LOG_SCHEMA.empty_table())),
        }
        has_map = (
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_column_mapping m "
            "JOIN __ducklake_metadata_lake.ducklake_table t ON m.table_id = t.table_id "
            "WHERE t.table_name = ? AND t.end_snapshot IS NULL"
        )
        for table, append in appenders.items():
            if self._con.execute(has_map, [table]).fetchone()[0]:
                continue
            written: list[str] = []

            def body(cur: duckdb.DuckDBPyConnection) -> None:
                if cur.execute(has_map, [table]).fetchone()[0]:  # another process registered it
                    return
                written.append(append(cur))  # noqa: B023 - run before the loop moves on

            run_transaction(self._con, body, attempts=20)
            for path in written:
                with contextlib.suppress(OSError):
                    os.remove(path)

    # -- cursors ----------------------------------------------------------------------------

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            cur = self._con.cursor()
            self._cursors.append(cur)
            return cur

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise StoreClosed("the store is closed")
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._new_cursor()
        return cur

    # -- writing ----------------------------------------------------------------------------

    def write_spans(self, batch: SpanBatch) -> "Future[None]":
        if self._closed:
            raise StoreClosed("the store is closed")
        if self._writer is None:
            raise StoreError("the store is read-only")
        check_batch(batch)
        return self._writer.submit(batch)

    def write_logs(self, batch: LogBatch) -> "Future[None]":
        if self._closed:
            raise StoreClosed("the store is closed")
        if self._writer is None:
            raise StoreError("the store is read-only")
        check_log_batch(batch)
        return self._writer.submit(batch)

    def flush(self) -> None:
        if self._writer is not None and not self._closed:
            self._writer.flush()

    # -- reading ----------------------------------------------------------------------------

    def get_trace(self, query: GetTrace) -> list[Span]:
        return self._read(self._reader.get_trace, query)

    def get_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[Span]]:
        return self._read(self._reader.get_traces, trace_ids)

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        return self._read(self._reader.find_trace_ids, query)

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        return self._read(self._reader.find_trace_summaries, query)

    def get_services(self) -> list[str]:
        return self._read(self._reader.get_services)

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        return self._read(self._reader.get_operations, service, span_kind)

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        return self._read(self._reader.get_dependencies, start_ns, end_ns)

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
        return self._read(
            self._reader.span_latency_rows, service, operation, span_kind, attributes, start_ns, end_ns, limit,
            entry_only,
        )

    def search_logs(self, query: LogQuery) -> LogPage:
        return self._read(self._logs_reader.search_logs, query)

    def log_histogram(self, query: LogQuery, step_ns: int) -> list[LogBucket]:
        return self._read(self._logs_reader.log_histogram, query, step_ns)

    def logs_for_trace(self, trace_id: bytes) -> list[LogRecord]:
        return self._read(self._logs_reader.logs_for_trace, trace_id)

    def _read(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except duckdb.Error as exc:
            if self._closed:
                raise StoreClosed("the store is closed") from exc
            raise StoreError(str(exc)) from exc

    # -- archive, retention, compaction -----------------------------------------------------

    def archive_trace(self, trace_id: bytes) -> bool:
        if not self._read(self._reader.trace_known, trace_id):
            return False
        self._write_tx(lambda cur: cur.execute(*search_sql.archive_trace_sql(trace_id, time.time_ns())))
        return True

    def apply_retention(self, cutoff_ns: int) -> int:
        """Delete spans that started before ``cutoff_ns`` and older log records (archived
        traces kept), fix the trace index of traces cut in two, then rewrite, expire and clean
        up so the files go away. Returns the number of spans deleted."""

        def body(cur: duckdb.DuckDBPyConnection) -> int:
            straddling = cur.execute(*search_sql.straddling_traces_sql(cutoff_ns)).to_arrow_table()
            cur.register("_straddling", straddling)
            try:
                deleted = cur.execute(*search_sql.delete_spans_sql(cutoff_ns)).fetchone()[0]  # type: ignore[index]
                cur.execute(*search_sql.delete_index_rows_sql(cutoff_ns, "_straddling"))
                if straddling.num_rows:
                    cur.execute(*search_sql.rebuild_index_rows_sql(cutoff_ns, "_straddling"))
                cur.execute(*logs_sql.delete_logs_sql(cutoff_ns))
                cur.execute(*logs_sql.delete_log_index_rows_sql(cutoff_ns))
            finally:
                cur.unregister("_straddling")
            return int(deleted)

        with self._maintenance_lock:
            deleted = self._write_tx(body)
            cur = self._cursor()
            # Files that lost most of their rows are rewritten; then the snapshots that still
            # reference the old rows expire and their files are deleted.
            self._retry(cur, "CALL ducklake_rewrite_data_files('lake', delete_threshold => 0.5)")
            self._expire_and_clean(cur)
        return deleted

    def compact(self) -> None:
        """Merge small files, expire old snapshots and delete the files
        they alone used. Merging keeps commit order for spans (commits arrive in time order, so
        row groups cover narrow start_ns ranges) and sorts the trace index by ``trace_key``
        (``SET SORTED BY`` in ``schema/tables.sql``, which explains why spans have no sort key).
        """
        if self._writer is None:
            raise StoreError("the store is read-only")
        with self._maintenance_lock:
            cur = self._cursor()
            self._retry(cur, "CALL ducklake_merge_adjacent_files('lake')")
            self._expire_and_clean(cur)
            self._value_index.sweep()  # the saved filters of the files just removed

    def _expire_and_clean(self, cur: duckdb.DuckDBPyConnection) -> None:
        grace = max(0.0, float(self.options.cleanup_grace_s))
        # ``older_than`` compares timestamps as text on a SQLite catalog (they are stored as
        # VARCHAR) and matches everything from the same day, so the snapshots are chosen here
        # with a typed comparison and passed by id; files are then removed once their last
        # snapshot expired.
        ids = [
            r[0]
            for r in cur.execute(
                "SELECT snapshot_id FROM ducklake_snapshots('lake') WHERE snapshot_time < now() - to_seconds(?)",
                [grace],
            ).fetchall()
        ]
        if ids:
            self._retry(cur, "CALL ducklake_expire_snapshots('lake', versions => ?)", [ids])
        self._retry(cur, "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")
        # The sweep lists the data folder, then looks at each file; a file that vanishes in
        # between fails the whole call with "No such file or directory" (seen once in
        # test_compaction_while_writing, with commits running beside it). The next listing no
        # longer has the file.
        self._retry(
            cur,
            "CALL ducklake_delete_orphaned_files('lake', older_than => now() - to_seconds(?))",
            [max(grace, ORPHAN_MIN_AGE_S)],
            also_retry="no such file or directory",
        )

    def _retry(self, cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None,
               also_retry: str | None = None) -> None:
        """Run a maintenance call, again on a commit conflict (or an error containing
        ``also_retry``), with growing pauses."""
        delay = 0.02
        for attempt in range(10):
            try:
                cur.execute(sql, params or []).to_arrow_table()
                return
            except duckdb.Error as exc:
                again = is_retryable(exc) or (also_retry is not None and also_retry in str(exc).lower())
                if attempt == 9 or not again:
                    raise StoreError(f"{sql.split('(')[0]} failed: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _write_tx(self, body: Any) -> Any:
        if self._writer is None:
            raise StoreError("the store is read-only")
        try:
            return run_transaction(self._cursor(), body)
        except duckdb.Error as exc:
            raise StoreError(str(exc)) from exc

    def _maintain(self) -> None:
        interval = float(self.options.maintenance_interval_s)
        while not self._stop.wait(interval):
            try:
                self.compact()
                if self.options.retention_ns:
                    self.apply_retention(time.time_ns() - int(self.options.retention_ns))
            except StoreClosed:
                return
            except Exception:
                log.exception("DuckLake maintenance failed; will try again in %.0f s", interval)

    # -- metric samples (samples.py) -------------------------------------------------------

    def write_samples(self, batch: SampleBatch) -> "Future[None]":
        if self._closed:
            raise StoreClosed("the store is closed")
        return self._sample_lake().write(batch)

    def query_samples(self, query: SampleQuery) -> list[SampleSeries]:
        return self._read(lambda: self._sample_lake().query(query))

    def rollup_samples(self, now_ns: int | None = None) -> None:
        """Roll up closed 5-minute windows and delete raw samples past the retention now
        (the writer does it every minute in the process that runs maintenance)."""
        self._read(lambda: self._sample_lake().rollup(now_ns))

    def _sample_lake(self) -> samples.SampleLake:
        lake = self.__dict__.get("_samples")
        if lake is None:
            with samples.INIT_LOCK:
                lake = self.__dict__.get("_samples")
                if lake is None:
                    write_cursor = None if self._writer is None else self._new_cursor()
                    rollups = self._writer is not None and self.options.maintenance_interval_s > 0
                    lake = self._samples = samples.SampleLake(self._cursor, write_cursor, rollup_enabled=rollups,
                                                              raw_retention_ns=self.options.retention_ns)
        return lake

    # -- stats and close --------------------------------------------------------------------

    def stats(self) -> StoreStats:
        roots = {self._data_dir}
        if "://" not in self._data_path and not self._data_path.startswith(self._data_dir + os.sep):
            roots.add(self._data_path)
        size = 0
        for root in roots:
            for dirpath, _, files in os.walk(root):
                for f in files:
                    try:
                        size += os.path.getsize(os.path.join(dirpath, f))
                    except OSError:
                        pass  # removed by a concurrent cleanup
        w = self._writer
        return StoreStats(
            queue_depth_spans=w.queue_depth if w else 0,
            size_on_disk_bytes=size,
            commits=w.commits if w else 0,
            commit_seconds=w.commit_seconds if w else 0.0,
            committed_rows=w.committed_rows if w else 0,
            extra={"failed_commits": float(w.failed_commits if w else 0)},
        )

    def close(self) -> None:
        with self._close_lock:
            if not self._closed:
                self._close()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.__dict__.get("_samples") is not None:
            self._samples.close()
        self._stop.set()
        if self._maintenance is not None:
            self._maintenance.join()
        with self._lock:
            self._closed = True
            cursors, self._cursors = self._cursors, []
        for cur in cursors:
            try:
                cur.close()
            except duckdb.Error:
                pass
        self._con.close()

    def __enter__(self) -> "DuckLakeStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _use_wal(path: str) -> None:
    """Put a SQLite catalog in WAL mode (a persistent property of the file).

    In SQLite's default rollback-journal mode a commit needs every reader out of the file, so
    a store's own reader threads (and other processes) starve its writer into "database is
    locked" errors; in WAL mode readers and the one writer at a time do not block each other.
    Committed transactions still survive the death of the process.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _statements(name: str) -> list[str]:
    text = importlib_resources.files("spanlake.storage.ducklake").joinpath("schema", name).read_text()
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
