"""Quick measurement of the DuckLake writer (not a test): rows/s and bytes per span on disk.

    python tests/storage_suite/measure_writer.py [--batches 6] [--rows 51200] [--runs 3]

Each run writes the same pre-built realistic batches (random ids, ~8 span attributes, 12
resource attributes, some events and links) through ``DuckLakeStore.write_spans`` into a fresh
SQLite-catalog store, and prints the median. Beside it, as the baseline of the same run and
machine, a bare DuckLake ``INSERT`` of the same Arrow tables into a spans table (no trace index,
no resources, no group-commit thread).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from storage_suite.builders import BASE_NS, SEC, realistic_batch  # noqa: E402

from spanlake.storage.api import WriteQueueFull  # noqa: E402
from spanlake.storage.ducklake.extensions import connect  # noqa: E402
from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore, _statements  # noqa: E402


def _du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def run_store(batches: list, root: str) -> tuple[float, float, float]:
    """(spans/s, bytes/span after close, bytes/span after compaction)."""
    n = sum(b.num_spans for b in batches)
    store = DuckLakeStore(DuckLakeOptions(data_dir=root, maintenance_interval_s=0, cleanup_grace_s=0))
    t0 = time.perf_counter()
    futures = []
    for b in batches:
        while True:  # a full queue answers at once; a client backs off and retries
            try:
                futures.append(store.write_spans(b))
                break
            except WriteQueueFull:
                time.sleep(0.005)
    for f in futures:
        f.result()
    rate = n / (time.perf_counter() - t0)
    size = store.stats().size_on_disk_bytes
    store.compact()
    compacted = store.stats().size_on_disk_bytes
    store.close()
    return rate, size / n, compacted / n


def run_baseline(batches: list, root: str) -> float:
    n = sum(b.num_spans for b in batches)
    con = connect(memory_limit="2GB", threads=2)
    con.execute(f"ATTACH 'ducklake:sqlite:{root}/catalog.sqlite' AS lake (DATA_PATH '{root}/data/')")
    con.execute(_statements("tables.sql")[0])
    con.execute(_statements("options.sql")[0])
    t0 = time.perf_counter()
    for b in batches:
        con.register("b", b.spans)
        con.execute("INSERT INTO lake.spans SELECT * FROM b")
        con.unregister("b")
    rate = n / (time.perf_counter() - t0)
    con.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--rows", type=int, default=51_200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    batches = [realistic_batch(args.rows, seed=i, start_ns=BASE_NS + i * SEC) for i in range(args.batches)]
    print(f"built {args.batches} batches of {args.rows} spans in {time.perf_counter() - t0:.1f} s")
    rates, sizes, compacted, base = [], [], [], []
    for _ in range(args.runs):
        for fn, out in ((run_baseline, base), (run_store, None)):
            root = tempfile.mkdtemp(prefix="spanlake-measure-")
            try:
                if fn is run_store:
                    r, s, c = run_store(batches, root)
                    rates.append(r)
                    sizes.append(s)
                    compacted.append(c)
                else:
                    base.append(run_baseline(batches, root))
            finally:
                shutil.rmtree(root, ignore_errors=True)
    print(f"baseline bare DuckLake INSERT: {statistics.median(base):,.0f} spans/s (runs: {', '.join(f'{x:,.0f}' for x in base)})")
    print(f"DuckLakeStore.write_spans:     {statistics.median(rates):,.0f} spans/s (runs: {', '.join(f'{x:,.0f}' for x in rates)})")
    print(f"on disk: {statistics.median(sizes):.1f} bytes/span after commit, {statistics.median(compacted):.1f} after compact()")


if __name__ == "__main__":
    main()
