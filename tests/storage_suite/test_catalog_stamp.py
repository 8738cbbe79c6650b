"""``SqliteCatalogStamp`` against a real SQLite database in WAL mode (as the store opens its
catalog), written by Python's sqlite3 as another process would: the stamp must change with
every commit and with nothing else."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from spanlake.storage.ducklake.catalog_stamp import LatestSnapshot, SqliteCatalogStamp, catalog_stamp


def _wal_db(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE t (x INTEGER)")
    return con


def test_every_commit_changes_the_stamp_and_reads_do_not(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    writer = _wal_db(path)
    reader = sqlite3.connect(path, isolation_level=None)
    stamp = SqliteCatalogStamp(str(path))
    stamps = [stamp()]
    for i in range(200):  # quicker than the file times' resolution
        writer.execute("INSERT INTO t VALUES (?)", [i])
        stamps.append(stamp())
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (i + 1,)
        assert stamp() == stamps[-1], "a read changed the stamp"
    assert all(a != b for a, b in zip(stamps, stamps[1:])), "a commit left the stamp unchanged"


def test_checkpoints_and_reopening_keep_commits_visible(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    writer = _wal_db(path)
    stamp = SqliteCatalogStamp(str(path))
    before = stamp()
    writer.execute("PRAGMA wal_checkpoint(RESTART)")
    writer.execute("INSERT INTO t VALUES (1)")  # written from the start of the WAL again
    after_restart = stamp()
    assert after_restart != before
    writer.close()  # the last connection: SQLite folds the WAL in and removes -wal and -shm
    closed = stamp()
    again = sqlite3.connect(path, isolation_level=None)
    again.execute("INSERT INTO t VALUES (2)")
    assert stamp() not in (closed, after_restart)


def test_latest_snapshot_asks_only_after_a_change(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    writer = _wal_db(path)
    asked: list[int] = []

    def query(_cur: object) -> int:
        n = writer.execute("SELECT count(*) FROM t").fetchone()[0]
        asked.append(n)
        return n

    latest = LatestSnapshot(query, SqliteCatalogStamp(str(path)))  # type: ignore[arg-type]
    assert [latest(None) for _ in range(5)] == [0] * 5  # type: ignore[arg-type]
    assert asked == [0]
    writer.execute("INSERT INTO t VALUES (1)")
    assert latest(None) == 1  # type: ignore[arg-type]
    assert asked == [0, 1]


def test_only_sqlite_catalogs_have_a_stamp(tmp_path: Path) -> None:
    assert catalog_stamp(f"sqlite:{tmp_path / 'c.sqlite'}") is not None
    assert catalog_stamp("postgres:dbname=spanlake host=db") is None
