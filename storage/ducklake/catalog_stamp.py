"""A cheap test of whether a SQLite catalog changed, so readers ask for the latest snapshot only
when it did.

Asking DuckLake's SQLite catalog for its latest snapshot id goes through DuckDB's SQLite
extension and costs 1-2.5 ms, most of a trace lookup's budget. Every commit, of any process,
changes bytes that SQLite's file formats document (https://www.sqlite.org/walformat.html,
https://www.sqlite.org/fileformat2.html):

* in WAL mode (how the store opens its catalog), the WAL-index header at the start of the
  ``-shm`` file, which every write transaction rewrites (change counter, last frame, salts,
  checksums), and the ``-wal`` file's size or modification time (not the ``-shm`` file's,
  which readers touch too);
* in rollback-journal mode, the database header's file change counter (offset 24), and the
  database file's size or modification time.

A :class:`SqliteCatalogStamp` reads all of them (a few stat and pread calls, ~20 us) into one
byte string. Equal stamps mean no commit happened in between, so the snapshot id read after the
earlier stamp is still the latest; a different stamp, or a read caught half way through a
header update, only costs the query. Files are opened anew each time: SQLite deletes and
recreates ``-wal`` and ``-shm`` when the last connection closes.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import duckdb

#: The first copy of the WAL-index header (``WalIndexHdr``), 48 bytes.
_WAL_INDEX_HEADER = 48
#: The database header's file change counter.
_CHANGE_COUNTER_AT, _CHANGE_COUNTER_LEN = 24, 4


def _file_part(path: str, length: int, offset: int, times: bool = True) -> bytes:
    """Inode, size and (with ``times``) modification time of ``path``, and ``length`` bytes at
    ``offset``; a marker when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b"|absent"
    try:
        st = os.fstat(fd)
        head = os.pread(fd, length, offset) if length else b""
    finally:
        os.close(fd)
    return f"|{st.st_ino}:{st.st_size}:{st.st_mtime_ns if times else 0}:".encode() + head


class SqliteCatalogStamp:
    """Bytes that change whenever a transaction commits to the SQLite database at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> bytes:
        return (
            _file_part(self.path, _CHANGE_COUNTER_LEN, _CHANGE_COUNTER_AT)
            + _file_part(self.path + "-wal", 0, 0)
            # Readers write their read marks into -shm too (after the header): not its time.
            + _file_part(self.path + "-shm", _WAL_INDEX_HEADER, 0, times=False)
        )


def catalog_stamp(catalog: str) -> Callable[[], bytes] | None:
    """The stamp of a DuckLake catalog string (``sqlite:/path``); None for other catalogs
    (PostgreSQL), whose readers ask for the snapshot every time."""
    if catalog.startswith("sqlite:"):
        return SqliteCatalogStamp(catalog[len("sqlite:"):])
    return None


class LatestSnapshot:
    """The latest snapshot id: ``query(cur)`` when the catalog's stamp changed (or there is
    none), the id the previous query gave otherwise."""

    def __init__(self, query: Callable[[duckdb.DuckDBPyConnection], int], stamp: Callable[[], bytes] | None) -> None:
        self._query = query
        self._stamp = stamp
        self._lock = threading.Lock()
        self._known: tuple[bytes, int] | None = None  # (stamp, the snapshot id read after it)

    def __call__(self, cur: duckdb.DuckDBPyConnection) -> int:
        if self._stamp is None:
            return self._query(cur)
        # Taken before the query: a commit landing in between changes the next stamp, so
        # the id stored below is never trusted past a commit it did not see.
        stamp = self._stamp()
        with self._lock:
            if self._known is not None and self._known[0] == stamp:
                return self._known[1]
        snapshot = self._query(cur)
        with self._lock:
            self._known = (stamp, snapshot)
        return snapshot
