"""The write path: one thread group-commits queued span and log batches into DuckLake.

``write_spans`` and ``write_logs`` only queue (bounded by rows, spans and log records alike, so
memory stays bounded under overload) and return a future; the writer thread takes everything
queued after at most ``commit_interval_ms`` (or at once when ``commit_max_spans`` rows are
waiting), concatenates it per kind (a :class:`WriteGroup`) and commits it in one DuckLake
transaction: one INSERT per table from Arrow tables registered with DuckDB. The futures of a
commit resolve together, after the catalog commit, so an acknowledged batch is in closed
Parquet files referenced by a committed snapshot in the catalog and survives ``kill -9``.

Under load (batches arrived while the previous commit ran) commits also start at least
``commit_spacing_ms`` apart. A DuckLake commit costs a fixed ~40 ms of CPU in catalog queries
whatever its size, so without spacing a busy writer commits back to back in small groups and
that fixed cost eats the CPU the receivers need; with it, commits grow with the load instead of
their number. An idle writer (a lone request) still commits after ``commit_interval_ms``.

The DuckLake store runs the writer thread ``WRITER_NICENESS`` steps nicer than the process
(Linux schedules threads one by one). Receiving is what limits ingest on a busy machine: the
receivers' event loop decodes every request, and each Export waits for its commit either way;
so when both want the CPU, decoding goes first and commits simply grow.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import duckdb
import pyarrow as pa

from spanlake.log_model import LOG_SCHEMA, LogBatch
from spanlake.model import RESOURCE_SCHEMA, SCOPE_SCHEMA, SPAN_SCHEMA, SpanBatch
from spanlake.storage.api import StoreClosed, StoreError, WriteQueueFull
from spanlake.storage.ducklake import logs_append, logs_sql, parquet_append, search_sql

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How much nicer than the process the DuckLake store's writer thread runs. Measured with
#: ``bench/ingest_logs.py``'s setup in 7 pairs of runs taken in turn with the writer at the
#: process's own priority: faster in every pair, by 14% (median; 1-28%).
WRITER_NICENESS = 10

# Messages of errors that a new attempt can get past: DuckLake snapshot conflicts (after its
# own retries are exhausted), SQLite lock timeouts, PostgreSQL serialisation failures.
_RETRYABLE = (
    "conflict",
    "retry",
    "database is locked",
    "database is busy",
    "could not serialize",
    "deadlock",
    "duplicate key",
    "primary key",
)


def check_batch(batch: SpanBatch) -> None:
    """Refuse a batch whose tables lack columns of the model, before it can fail a whole commit
    group (types are cast by the INSERT; names must all be there)."""
    for table, schema in ((batch.spans, SPAN_SCHEMA), (batch.resources, RESOURCE_SCHEMA), (batch.scopes, SCOPE_SCHEMA)):
        if table.schema.names != schema.names:
            missing = set(schema.names) - set(table.schema.names)
            raise ValueError(f"batch columns differ from the model (missing: {sorted(missing)})")


def check_log_batch(batch: LogBatch) -> None:
    """:func:`check_batch` for log batches."""
    for table, schema in ((batch.logs, LOG_SCHEMA), (batch.resources, RESOURCE_SCHEMA), (batch.scopes, SCOPE_SCHEMA)):
        if table.schema.names != schema.names:
            missing = set(schema.names) - set(table.schema.names)
            raise ValueError(f"batch columns differ from the model (missing: {sorted(missing)})")


@dataclass
class WriteGroup:
    """What one transaction commits: the queued span batches and log batches, concatenated."""

    spans: SpanBatch
    logs: LogBatch

    @staticmethod
    def of(batches: list[Any]) -> "WriteGroup":
        spans = [b for b in batches if isinstance(b, SpanBatch)]
        logs = [b for b in batches if isinstance(b, LogBatch)]
        return WriteGroup(
            SpanBatch.concat(spans) if spans else SpanBatch.empty(),
            LogBatch.concat(logs) if logs else LogBatch.empty(),
        )


def batch_rows(batch: Any) -> int:
    """Rows a queued batch counts for: its spans or its log records."""
    return batch.num_logs if isinstance(batch, LogBatch) else batch.num_spans


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.Error) and any(m in str(exc).lower() for m in _RETRYABLE)


def run_transaction(
    cur: duckdb.DuckDBPyConnection, body: Callable[[duckdb.DuckDBPyConnection], T], *, attempts: int = 12
) -> T:
    """Run ``body`` between BEGIN and COMMIT on ``cur``, again from the start on a conflict."""
    delay = 0.01
    for attempt in range(1, attempts + 1):
        try:
            cur.execute("BEGIN TRANSACTION")
            result = body(cur)
            cur.execute("COMMIT")
            return result
        except Exception as exc:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass  # the failed COMMIT already ended the transaction
            if attempt == attempts or not is_retryable(exc):
                raise
            log.info("retrying a conflicting DuckLake transaction (attempt %d): %s", attempt, exc)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")


class SpanCommitter:
    """Writes concatenated batches (spans, and logs riding in the same :class:`WriteGroup`) in
    one transaction; remembers which resources/scopes exist (spans and logs share them).

    The known-id sets are per process: another process may insert the same resource too, and
    readers tolerate such duplicate rows. Ids are only remembered after their commit succeeded.
    """

    def __init__(self, cur: duckdb.DuckDBPyConnection, data_path: str | None = None) -> None:
        self._cur = cur
        # Spans and logs go to Parquet through pyarrow when the data path is a local folder
        # (several times faster than INSERT; see parquet_append.py and logs_append.py),
        # otherwise through INSERT.
        self._parquet_path = data_path if data_path and parquet_append.is_local_path(data_path) else None
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()

    def commit(self, group: SpanBatch | WriteGroup) -> None:
        if isinstance(group, SpanBatch):
            group = WriteGroup(group, LogBatch.empty())
        batch, logs = group.spans, group.logs
        resource_rows, scope_rows = batch.resources, batch.scopes
        if logs.num_logs:
            resource_rows = pa.concat_tables([resource_rows, logs.resources])
            scope_rows = pa.concat_tables([scope_rows, logs.scopes])
        resources, new_resources = _new_rows(resource_rows, "resource_id", self._known_resources)
        scopes, new_scopes = _new_rows(scope_rows, "scope_id", self._known_scopes)
        # Logs go to Parquet through pyarrow too; their keys and index rows are computed in Arrow.
        logs_by_file = bool(logs.num_logs) and self._parquet_path is not None
        keyed_logs = logs_append.with_keys(logs.logs) if logs_by_file else None

        def body(cur: duckdb.DuckDBPyConnection) -> None:
            if batch.spans.num_rows and self._parquet_path is not None:
                parquet_append.append_table(cur, self._parquet_path, "spans", batch.spans)
            elif batch.spans.num_rows:
                cur.execute("INSERT INTO lake.spans BY NAME SELECT * FROM _batch_spans")
            if batch.spans.num_rows:
                cur.execute(search_sql.insert_index_rows_sql("_batch_spans"))
            if logs_by_file:
                logs_append.append_logs(cur, self._parquet_path, keyed_logs)
                cur.execute(logs_sql.insert_log_index_from_sql("_batch_log_index"))
            elif logs.num_logs:
                cur.execute(logs_sql.insert_logs_sql("_batch_logs"))
                cur.execute(logs_sql.insert_log_index_rows_sql("_batch_logs"))
            if resources.num_rows:
                cur.execute("INSERT INTO lake.resources BY NAME SELECT * FROM _batch_resources")
            if scopes.num_rows:
                cur.execute("INSERT INTO lake.scopes BY NAME SELECT * FROM _batch_scopes")

        cur = self._cur
        cur.register("_batch_spans", batch.spans)
        cur.register("_batch_resources", resources)
        cur.register("_batch_scopes", scopes)
        names = ["_batch_spans", "_batch_resources", "_batch_scopes"]
        if keyed_logs is not None:
            cur.register("_batch_log_index", logs_append.index_rows(keyed_logs))
            names.append("_batch_log_index")
        elif logs.num_logs:
            cur.register("_batch_logs", logs.logs)
            names.append("_batch_logs")
        try:
            run_transaction(cur, body)
        finally:
            for name in names:
                cur.unregister(name)
        self._known_resources.update(new_resources)
        self._known_scopes.update(new_scopes)


def _new_rows(table: pa.Table, id_col: str, known: set[int]) -> tuple[pa.Table, list[int]]:
    """Rows of ids not yet known, one per id."""
    seen: set[int] = set()
    keep: list[int] = []
    for i, rid in enumerate(table.column(id_col).to_pylist()):
        if rid not in known and rid not in seen:
            seen.add(rid)
            keep.append(i)
    if len(keep) == table.num_rows:
        return table, list(seen)
    return table.take(pa.array(keep, type=pa.int64())), list(seen)


@dataclass
class _Item:
    batch: Any  # None: a flush barrier
    future: "Future[None]"
    spans: int  # rows: spans or log records
    queued_at: float


def _span_rows(batch: SpanBatch) -> int:
    return batch.num_spans


def _be_nicer(steps: int) -> None:
    """Lower the calling thread's CPU priority by ``steps`` (Linux only: elsewhere the
    niceness belongs to the whole process)."""
    if steps <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except OSError as e:  # e.g. a sandbox without setpriority: run at the process's priority
        log.warning("cannot lower the writer thread's priority: %s", e)


class GroupCommitWriter:
    """A bounded queue and the one thread that drains it into ``commit_fn``.

    The queue holds batches of any kind: ``size`` tells how many rows a batch counts for (the
    limits are in rows) and ``combine`` turns the batches of one group into what ``commit_fn``
    takes. The defaults are for span batches only; the DuckLake store passes
    :func:`batch_rows` and :meth:`WriteGroup.of` so spans and logs share commits.
    """

    def __init__(
        self,
        commit_fn: Callable[[Any], None],
        *,
        max_queue_spans: int,
        commit_interval_s: float,
        commit_max_spans: int,
        commit_spacing_s: float = 0.0,
        name: str = "spanlake-writer",
        combine: Callable[[list[Any]], Any] = SpanBatch.concat,
        size: Callable[[Any], int] = _span_rows,
        niceness: int = 0,
    ) -> None:
        self._commit_fn = commit_fn
        self._niceness = niceness
        self._combine = combine
        self._size = size
        self._max_queue_spans = max_queue_spans
        self._interval = commit_interval_s
        self._spacing = commit_spacing_s
        self._commit_max = commit_max_spans
        # When the last commit started, if batches arrived while it ran (the writer is busy).
        self._paced_from: float | None = None
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._queued_spans = 0
        self._committing_spans = 0
        self._closing = False
        self.commits = 0
        self.failed_commits = 0
        self.commit_seconds = 0.0  # wall time of the successful commits
        self.committed_rows = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        """Spans accepted but not yet committed (queued or in the commit under way)."""
        with self._cond:
            return self._queued_spans + self._committing_spans

    def submit(self, batch: Any) -> "Future[None]":
        n = self._size(batch)
        with self._cond:
            if self._closing:
                raise StoreClosed("the store is closed")
            # A batch larger than the whole queue is still taken when the queue is empty,
            # otherwise it could never be written.
            if self._queued_spans and self._queued_spans + n > self._max_queue_spans:
                raise WriteQueueFull(f"{self._queued_spans} spans queued; limit {self._max_queue_spans}")
            fut: Future[None] = Future()
            self._queue.append(_Item(batch, fut, n, time.monotonic()))
            self._queued_spans += n
            self._cond.notify_all()
            return fut

    def flush(self) -> None:
        """Block until everything queued before this call is committed (or has failed)."""
        with self._cond:
            if self._closing and not self._thread.is_alive():
                return
            fut: Future[None] = Future()
            self._queue.append(_Item(None, fut, 0, time.monotonic()))
            self._cond.notify_all()
        fut.result()

    def close(self) -> None:
        """Commit what is queued, then stop the thread. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _take(self) -> list[_Item] | None:
        """Wait for the next group to commit; None when closing with nothing left."""
        with self._cond:
            while True:
                if self._queue:
                    now = time.monotonic()
                    due = self._queue[0].queued_at + self._interval
                    if self._paced_from is not None:
                        due = max(due, self._paced_from + self._spacing)
                    barrier = any(item.batch is None for item in self._queue)
                    if self._closing or barrier or self._queued_spans >= self._commit_max or now >= due:
                        break
                    self._cond.wait(due - now)
                elif self._closing:
                    return None
                else:
                    self._cond.wait()
            items: list[_Item] = []
            spans = 0
            while self._queue:
                item = self._queue[0]
                if items and item.batch is not None and spans + item.spans > self._commit_max:
                    break
                self._queue.popleft()
                items.append(item)
                spans += item.spans
                if item.batch is None:
                    break  # everything before the barrier is in this group
            self._queued_spans -= spans
            self._committing_spans = spans
            return items

    def _run(self) -> None:
        _be_nicer(self._niceness)
        while True:
            items = self._take()
            if items is None:
                return
            started = time.monotonic()
            batches = [item.batch for item in items if item.batch is not None]
            error: BaseException | None = None
            if batches:
                try:
                    self._commit_fn(self._combine(batches))
                    self.commits += 1
                    self.commit_seconds += time.monotonic() - started
                    self.committed_rows += sum(map(self._size, batches))
                except BaseException as exc:  # every future of the group learns why
                    self.failed_commits += 1
                    log.exception("commit of %d rows failed", sum(map(self._size, batches)))
                    if isinstance(exc, StoreError):
                        error = exc
                    else:
                        error = StoreError(f"commit failed: {exc}")
                        error.__cause__ = exc
            with self._cond:
                self._committing_spans = 0
                busy = bool(batches) and any(item.batch is not None for item in self._queue)
                self._paced_from = started if busy else None
            for item in items:
                if item.batch is None or error is None:
                    item.future.set_result(None)
                else:
                    item.future.set_exception(error)
