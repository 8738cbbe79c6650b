"""Per-thread read cursors, each read in a short transaction of its own.

A read transaction sees one snapshot for all its statements and DuckLake loads that snapshot's
metadata once, at its first lake statement. Transactions are never kept open between reads: a
DuckDB read transaction left open while another connection commits breaks the transactions
that start after it on a SQLite catalog ("disk I/O error", DuckDB 1.5.5), and a new one per
read is what makes each read see the latest commit, of this process or another.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import duckdb

from spanlake.storage.ducklake.lake_files import current_snapshot


class ReadSessions:
    """Hands each thread its own cursor, inside a transaction, with its snapshot id."""

    def __init__(self, new_cursor: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self._new_cursor = new_cursor
        self._local = threading.local()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor, for autocommit statements."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._new_cursor()
            # Footers of the (immutable) data files are parsed once, not at every statement:
            # a 10M-span file's footer cost ~50 ms per scan. A database-wide setting.
            cur.execute("SET parquet_metadata_cache = true")
        return cur

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[tuple[duckdb.DuckDBPyConnection, int | None]]:
        """(cursor, snapshot id or None unless asked) inside one read transaction."""
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur, current_snapshot(cur) if snapshot else None
            cur.execute("COMMIT")
        except BaseException:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
