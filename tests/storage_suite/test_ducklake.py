"""DuckLake specifics: table layout, compaction, the maintenance thread, and the group-commit
writer on its own (with a fake commit function, so grouping and failures are exact).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

import pytest

from spanlake.model import RESOURCE_SCHEMA, SCOPE_SCHEMA, SPAN_SCHEMA, SpanBatch
from spanlake.storage.api import GetTrace, StoreClosed, StoreError, TraceQuery
from spanlake.storage.ducklake.writer import WRITER_NICENESS, GroupCommitWriter

from .builders import BASE_NS, SEC, realistic_batch, simple_trace, tid
from .child_writer import trace_batch, writer_trace_id
from .conftest import Site, make_site

DAY_NS = 86_400 * SEC


@pytest.fixture(params=["ducklake-sqlite", "ducklake-postgres"])
def lake_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    site = make_site(request, request.param, tmp_path)
    yield site
    site.close_all()


def test_tables_have_the_model_columns(lake_site: Site) -> None:
    store = lake_site.open()
    cur = store._cursor()  # type: ignore[attr-defined]
    for table, schema in (("spans", SPAN_SCHEMA), ("resources", RESOURCE_SCHEMA), ("scopes", SCOPE_SCHEMA)):
        cols = [r[0] for r in cur.execute(f"DESCRIBE lake.{table}").fetchall()]
        assert cols == schema.names


def test_opening_registers_each_name_map_once(lake_site: Site) -> None:
    # The workaround for DuckLake 1.5.5 crashing when two processes create the first name map
    # at once: the store that opens first creates it, and leaves no file behind.
    store = lake_site.open()
    lake_site.open()  # a second process-like opener must reuse it, not add another
    cur = store._cursor()  # type: ignore[attr-defined]
    maps = cur.execute(
        "SELECT t.table_name, count(DISTINCT m.mapping_id) FROM __ducklake_metadata_lake.ducklake_column_mapping m "
        "JOIN __ducklake_metadata_lake.ducklake_table t ON m.table_id = t.table_id GROUP BY 1"
    ).fetchall()
    assert dict(maps) == {"spans": 1, "logs": 1}
    assert list(lake_site.root.rglob("*.parquet")) == []
    store.write_spans(trace_batch(8, 0, 5)).result(timeout=30)
    mapped = cur.execute(
        "SELECT DISTINCT mapping_id FROM __ducklake_metadata_lake.ducklake_data_file f "
        "JOIN __ducklake_metadata_lake.ducklake_table t ON f.table_id = t.table_id WHERE t.table_name = 'spans'"
    ).fetchall()
    assert len(mapped) == 1 and mapped[0][0] is not None  # the commit reused the registered map


def test_compaction_merges_files_and_keeps_data(lake_site: Site) -> None:
    store = lake_site.open(cleanup_grace_s=0)
    for i in range(4):
        store.write_spans(realistic_batch(300, seed=i, start_ns=BASE_NS + i * SEC)).result(timeout=30)
    store.write_spans(trace_batch(9, 0, 3)).result(timeout=30)  # a trickle commit: a tiny file
    cur = store._cursor()  # type: ignore[attr-defined]
    files_before = cur.execute("SELECT count(*) FROM ducklake_list_files('lake', 'spans')").fetchone()[0]
    before = store.get_trace(GetTrace(writer_trace_id(9, 0)))
    store.compact()  # type: ignore[attr-defined]
    files_after = cur.execute("SELECT count(*) FROM ducklake_list_files('lake', 'spans')").fetchone()[0]
    assert files_before >= 4 and files_after == 1
    assert cur.execute("SELECT count(*) FROM lake.spans").fetchone()[0] == 1203
    assert store.get_trace(GetTrace(writer_trace_id(9, 0))) == before
    listed: set[str] = set()
    for table in ("spans", "resources", "scopes", "trace_index", "archived_traces"):
        listed |= {os.path.abspath(r[0]) for r in cur.execute(f"SELECT data_file FROM ducklake_list_files('lake', '{table}')").fetchall()}
    on_disk = {str(p) for p in lake_site.root.rglob("*.parquet")}
    assert on_disk == listed  # the merged-away files are deleted


def test_maintenance_thread_applies_retention(lake_site: Site) -> None:
    # The data set's times are from 2023: a one-day retention expires them at the first run.
    store = lake_site.open(maintenance_interval_s=0.2, retention_ns=DAY_NS, cleanup_grace_s=0)
    store.write_spans(simple_trace("m", BASE_NS, 15, "maint-svc").build()).result(timeout=30)
    deadline = time.monotonic() + 20
    while store.get_trace(GetTrace(tid("m"))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get_trace(GetTrace(tid("m"))) == []
    assert store.find_trace_ids(TraceQuery(service_name="maint-svc")) == []


def test_compaction_while_writing(lake_site: Site) -> None:
    store = lake_site.open(cleanup_grace_s=0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def compact_loop() -> None:
        try:
            while not stop.is_set():
                store.compact()  # type: ignore[attr-defined]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=compact_loop)
    t.start()
    try:
        futures = [store.write_spans(trace_batch(5, i, 20)) for i in range(30)]
        for f in futures:
            f.result(timeout=60)
    finally:
        stop.set()
        t.join()
    assert not errors
    got = store.get_traces([writer_trace_id(5, i) for i in range(30)])
    assert len(got) == 30 and all(len(v) == 20 for v in got.values())


def test_read_only_store(lake_site: Site) -> None:
    lake_site.open().write_spans(simple_trace("ro", BASE_NS, 3, "ro-svc").build()).result(timeout=30)
    reader = lake_site.open(read_only=True)
    assert len(reader.get_trace(GetTrace(tid("ro")))) == 3
    with pytest.raises(StoreError):
        reader.write_spans(simple_trace("ro2", BASE_NS, 3, "ro-svc").build())


def test_malformed_batch_is_refused_before_queueing(lake_site: Site) -> None:
    store = lake_site.open()
    batch = simple_trace("bad", BASE_NS, 3, "bad-svc").build()
    with pytest.raises(ValueError):
        store.write_spans(SpanBatch(batch.spans.drop_columns(["name"]), batch.resources, batch.scopes))
    assert store.stats().queue_depth_spans == 0


# ---------------------------------------------------------------------------------------------
# GroupCommitWriter with a fake commit function
# ---------------------------------------------------------------------------------------------


def _batch(n: int, label: str = "g") -> SpanBatch:
    return simple_trace(label, BASE_NS, n, "g-svc").build()


class FakeCommits:
    def __init__(self, fail_label: str | None = None, delay: float = 0.0) -> None:
        self.groups: list[int] = []
        self.started: list[float] = []  # when each commit began
        self.fail_label = fail_label
        self.delay = delay

    def __call__(self, batch: SpanBatch) -> None:
        self.started.append(time.monotonic())
        time.sleep(self.delay)
        if self.fail_label and tid(self.fail_label) in batch.spans.column("trace_id").to_pylist():
            raise RuntimeError("disk full")
        self.groups.append(batch.num_spans)


def test_writer_groups_batches_within_the_interval() -> None:
    commits = FakeCommits()
    w = GroupCommitWriter(commits, max_queue_spans=1000, commit_interval_s=0.2, commit_max_spans=1000)
    futures = [w.submit(_batch(5)) for _ in range(10)]
    for f in futures:
        f.result(timeout=5)
    w.close()
    assert commits.groups == [50]


def test_writer_spaces_commits_under_load() -> None:
    """Batches arriving while a commit runs wait for the spacing: commits grow instead of
    multiplying (a steady stream every 10 ms would otherwise commit every ~60 ms)."""
    commits = FakeCommits(delay=0.05)
    w = GroupCommitWriter(commits, max_queue_spans=100_000, commit_interval_s=0.01, commit_max_spans=100_000,
                          commit_spacing_s=0.3)
    futures = []
    for _ in range(120):
        futures.append(w.submit(_batch(2)))
        time.sleep(0.01)
    for f in futures:
        f.result(timeout=10)
    w.close()
    assert sum(commits.groups) == 240
    gaps = [b - a for a, b in zip(commits.started, commits.started[1:])]
    # The first commit finds the writer idle; every later one starts a spacing after the last.
    assert gaps and min(gaps[1:] or gaps) >= 0.3 - 0.01, gaps
    assert len(commits.groups) <= 1 + 120 * 0.01 / 0.3 + 2


def _own_priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_writer_thread_runs_nicer_than_the_process() -> None:
    """Commits give way to the receivers' decoding when both want the CPU."""
    seen: list[int] = []
    w = GroupCommitWriter(lambda batch: seen.append(_own_priority()), max_queue_spans=100,
                          commit_interval_s=0.01, commit_max_spans=100, niceness=3)
    w.submit(_batch(1)).result(timeout=10)
    w.close()
    assert seen == [min(19, _own_priority() + 3)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_lake_writer_thread_runs_at_the_writer_niceness(lake_site: Site) -> None:
    store = lake_site.open()
    store.write_spans(simple_trace("nice", BASE_NS, 2, "nice-svc").build()).result(timeout=30)
    writer = store._writer._thread  # type: ignore[attr-defined]
    assert os.getpriority(os.PRIO_PROCESS, writer.native_id) == min(19, _own_priority() + WRITER_NICENESS)


def test_writer_idle_commits_do_not_wait_for_the_spacing() -> None:
    """One request at a time (nothing arrives during a commit) commits after the interval."""
    commits = FakeCommits()
    w = GroupCommitWriter(commits, max_queue_spans=1000, commit_interval_s=0.01, commit_max_spans=1000,
                          commit_spacing_s=30)
    t0 = time.monotonic()
    for _ in range(5):
        w.submit(_batch(3)).result(timeout=10)
    assert time.monotonic() - t0 < 10  # five spacings would be 150 s
    w.close()
    assert commits.groups == [3] * 5


def test_writer_commits_at_once_when_max_spans_are_queued() -> None:
    commits = FakeCommits()
    w = GroupCommitWriter(commits, max_queue_spans=1000, commit_interval_s=30, commit_max_spans=20)
    futures = [w.submit(_batch(10)) for _ in range(4)]
    t0 = time.monotonic()
    for f in futures:
        f.result(timeout=5)
    assert time.monotonic() - t0 < 5
    w.close()
    assert commits.groups == [20, 20]


def test_writer_failure_fails_exactly_that_commit() -> None:
    commits = FakeCommits(fail_label="bad")
    w = GroupCommitWriter(commits, max_queue_spans=1000, commit_interval_s=0.01, commit_max_spans=1000)
    bad = w.submit(_batch(3, "bad"))
    with pytest.raises(StoreError):
        bad.result(timeout=5)
    good = w.submit(_batch(3, "good"))
    assert good.result(timeout=5) is None
    w.close()
    assert commits.groups == [3]


def test_writer_flush_and_close() -> None:
    commits = FakeCommits(delay=0.05)
    w = GroupCommitWriter(commits, max_queue_spans=1000, commit_interval_s=30, commit_max_spans=1000)
    first = w.submit(_batch(4))
    w.flush()  # does not wait for the 30 s interval
    assert first.done()
    pending: list[Future[None]] = [w.submit(_batch(4)) for _ in range(3)]
    w.close()
    w.close()
    assert all(f.done() and f.exception() is None for f in pending)
    assert sum(commits.groups) == 16
    with pytest.raises(StoreClosed):
        w.submit(_batch(1))
