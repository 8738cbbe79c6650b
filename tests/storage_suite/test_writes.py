"""Write-path cases of the storage suite: queue limits, close, flush, concurrent readers, several
writer processes on one catalog, and acknowledged spans surviving kill -9.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import threading

import pytest

from spanlake.storage.api import GetTrace, Store, StoreClosed, TraceQuery, WriteQueueFull

from .builders import BASE_NS, SEC, simple_trace, tid
from .child_writer import spawn, writer_trace_id
from .conftest import Site


def test_write_queue_full(site: Site) -> None:
    if not site.supports("write_queue"):
        pytest.skip("backend has no write queue")
    store = site.open(max_queue_spans=100, commit_interval_ms=60_000)
    first = store.write_spans(simple_trace("q1", BASE_NS, 60, "queue-svc").build())
    with pytest.raises(WriteQueueFull):
        store.write_spans(simple_trace("q2", BASE_NS, 60, "queue-svc").build())
    assert store.stats().queue_depth_spans == 60
    store.close()  # commits what is queued
    assert first.result(timeout=0) is None
    reopened = site.open()
    assert len(reopened.get_trace(GetTrace(tid("q1")))) == 60
    assert reopened.get_trace(GetTrace(tid("q2"))) == []


def test_close_is_idempotent(store: Store) -> None:
    fut = store.write_spans(simple_trace("c", BASE_NS, 3, "close-svc").build())
    store.close()
    store.close()
    assert fut.result(timeout=0) is None
    with pytest.raises(StoreClosed):
        store.write_spans(simple_trace("c2", BASE_NS, 3, "close-svc").build())


def test_flush_and_stats(store: Store) -> None:
    futures = [store.write_spans(simple_trace(f"f{i}", BASE_NS, 5, "flush-svc").build()) for i in range(5)]
    store.flush()
    assert all(f.done() and f.exception() is None for f in futures)
    stats = store.stats()
    assert stats.queue_depth_spans == 0 and stats.commits >= 1


def test_concurrent_reads_while_writing(store: Store) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                store.find_trace_ids(TraceQuery(service_name="cr-svc", limit=5))
                store.get_trace(GetTrace(tid("cr0")))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        futures = [store.write_spans(simple_trace(f"cr{i}", BASE_NS + i * SEC, 20, "cr-svc").build()) for i in range(10)]
        for f in futures:
            f.result(timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert len(store.find_trace_ids(TraceQuery(service_name="cr-svc", limit=0))) == 10


def _child(site: Site, writer: int, batches: int, spans: int) -> subprocess.Popen[str]:
    return spawn(dataclasses.asdict(site.ducklake_options()), writer, batches, spans)


def test_concurrent_writer_processes(site: Site) -> None:
    if not site.supports("multi_process"):
        pytest.skip("single-process backend")
    watcher = site.open()  # a long-lived connection that must see the other processes' commits
    batches, spans = 15, 40
    children = [_child(site, w, batches, spans) for w in (1, 2)]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip().endswith("done")
    reader = site.open(read_only=True)
    for store in (watcher, reader):
        for w in (1, 2):
            got = store.get_traces([writer_trace_id(w, i) for i in range(batches)])
            assert len(got) == batches
            assert all(len(spans_) == spans for spans_ in got.values())
        assert len(store.find_trace_ids(TraceQuery(service_name="writer-1", limit=0))) == batches


def test_a_reader_sees_each_commit_of_another_store_at_once(site: Site) -> None:
    """Readers cache the latest snapshot between commits (on SQLite, until the catalog's
    files change): every acknowledged commit of another store must be visible to the next
    read, lookups and searches alike, with no wait."""
    if not site.supports("multi_process"):
        pytest.skip("single-process backend")
    reader = site.open()
    writer = site.open()
    seen: list[bytes] = []
    for i in range(12):
        assert reader.get_trace(GetTrace(tid(f"vis{i}"))) == []
        writer.write_spans(simple_trace(f"vis{i}", BASE_NS + i * SEC, 3, "visible-svc").build()).result(timeout=30)
        assert len(reader.get_trace(GetTrace(tid(f"vis{i}")))) == 3, f"commit {i} not visible"
        seen.append(tid(f"vis{i}"))
        found = reader.find_trace_ids(TraceQuery(service_name="visible-svc", limit=0))
        assert sorted(f.trace_id for f in found) == sorted(seen)


def test_acknowledged_spans_survive_kill_9(site: Site) -> None:
    if not site.supports("durability"):
        pytest.skip("backend keeps nothing across processes")
    site.open().close()  # create the catalog before the child races to
    child = _child(site, 3, 0, 25)
    acked: list[int] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("ack"):
                acked.append(int(line.split()[1]))
                if len(acked) >= 12:
                    break
        assert len(acked) >= 12, child.stderr.read() if child.stderr else ""
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    store = site.open()
    got = store.get_traces([writer_trace_id(3, i) for i in acked])
    assert sorted(got) == sorted(writer_trace_id(3, i) for i in acked)
    assert all(len(spans) == 25 for spans in got.values())
