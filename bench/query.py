"""Query benchmark: the read path of a DuckLake store holding a day of spans.

Run from the repository root::

    python -m bench.query                      # 10M spans, about 1M traces over one day
    python -m bench.query --spans 1000000      # a quick check

It bulk-loads the spans (``storage/ducklake/bulk_load.py``: pyarrow Parquet files registered
with ``ducklake_add_data_files``, then the store's own compaction), then prints p50 and p99 of
each query through the store beside a naive SQL query over ``lake.spans`` that gives the same
answer, measured in the same run (the naive answer is compared with the store's):

* trace by id (random traces);
* search, newest 20 traces: service + operation + duration range, and one attribute value
  (a user id: high cardinality, not a promoted column), over the last hour and the whole day
  (the first attribute search over a window, which builds the row-group value filters of its
  files, is timed on its own; ``--lake-baseline`` also times every search with the file search
  switched off, interleaved with it);
* services and operations lists;
* dependencies over the day;
* per-operation latency percentiles of a service over an hour, from ``span_latency_rows``
  (one call per operation) and, for comparison, one SQL statement with ``quantile_cont``.

The data directory lives under /tmp and is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from bench.query_data import DAY_NS, DAY_START_NS, USERS, catalog, span_batches
from spanlake.storage.api import GetTrace, TraceQuery
from spanlake.storage.ducklake import search_sql
from spanlake.storage.ducklake.bulk_load import bulk_load
from spanlake.storage.ducklake.layout import SPANS_PER_FILE
from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

HOUR_NS = 3_600_000_000_000
DAY_END_NS = DAY_START_NS + DAY_NS
LAST_HOUR = (DAY_END_NS - HOUR_NS, DAY_END_NS)


@dataclass
class Row:
    name: str
    store_ms: list[float] = field(default_factory=list)
    naive_ms: list[float] = field(default_factory=list)
    same: bool | None = None
    target: str = ""


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000.0, out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


# ---------------------------------------------------------------------------------------------
# Naive SQL: the straightforward query over lake.spans, no trace index, no store tricks.
# Trace ids are compared as hex text: DuckDB 1.5.5 drops row groups wrongly for BLOB equality.
# ---------------------------------------------------------------------------------------------


def naive_trace_sql(trace_id: bytes) -> tuple[str, list[Any]]:
    return "SELECT * FROM lake.spans WHERE hex(trace_id) = ? ORDER BY start_ns", [search_sql.trace_key(trace_id)]


def naive_search_sql(q: TraceQuery) -> tuple[str, list[Any]]:
    where, params = search_sql.span_conditions_sql(q)
    sql = f"""WITH hits AS (SELECT DISTINCT hex(trace_id) AS k FROM lake.spans WHERE {where})
SELECT any_value(trace_id), min(start_ns) AS s, max(start_ns + duration_ns)
FROM lake.spans WHERE hex(trace_id) IN (SELECT k FROM hits)
GROUP BY hex(trace_id) ORDER BY s DESC, hex(trace_id) LIMIT ?"""
    return sql, [*params, q.limit]


NAIVE_DEPENDENCIES = """SELECT p.service_name, c.service_name, count(*), count_if(c.status_code = 2)
FROM lake.spans c JOIN lake.spans p ON hex(c.trace_id) = hex(p.trace_id) AND hex(c.parent_span_id) = hex(p.span_id)
WHERE c.start_ns >= ? AND c.start_ns < ? AND p.service_name <> c.service_name
GROUP BY ALL ORDER BY 1, 2"""

SQL_PERCENTILES = """SELECT name, kind, count(*), quantile_cont(duration_ns, [0.5, 0.95, 0.99])
FROM lake.spans WHERE service_name = ? AND start_ns >= ? AND start_ns < ?
GROUP BY ALL ORDER BY name, kind"""


# ---------------------------------------------------------------------------------------------


def build(data_dir: str, spans: int, threads: int, memory_limit: str) -> DuckLakeStore:
    store = DuckLakeStore(
        DuckLakeOptions(data_dir=data_dir, memory_limit=memory_limit, threads=threads, maintenance_interval_s=0, cleanup_grace_s=0)
    )
    t_load, n = timed(lambda: bulk_load(store, span_batches(spans, SPANS_PER_FILE)))
    t_compact, _ = timed(store.compact)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data_dir) for f in fs)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"loaded {n:,} spans in {t_load / 1000:.1f} s, compacted in {t_compact / 1000:.1f} s; "
          f"{size / 1e6:.0f} MB on disk ({size / n:.1f} bytes/span); peak RSS so far {rss:.0f} MiB")
    return store


def run(store: DuckLakeStore, repeat: int, naive_repeat: int, seed: int, lake_baseline: bool = False) -> list[Row]:
    rng = np.random.default_rng(seed)
    cur = store._new_cursor()  # autocommit statements for the naive queries and set-up
    cur.execute("SET parquet_metadata_cache = true")  # the store's reader sets it too
    rows: list[Row] = []

    # -- trace by id ------------------------------------------------------------------------
    ids = [r[0] for r in cur.execute(f"SELECT trace_id FROM lake.trace_index USING SAMPLE {repeat * 10} ROWS (reservoir, {seed})").fetchall()]
    row = Row("trace by id", target="<= 10 ms p50, <= 50 ms p99")
    got: dict[bytes, int] = {}
    for t in ids:
        ms, spans = timed(lambda: store.get_trace(GetTrace(t)))
        row.store_ms.append(ms)
        got[t] = len(spans)
    row.same = True
    for t in ids[:naive_repeat]:
        ms, naive = timed(lambda: cur.execute(*naive_trace_sql(t)).fetchall())
        row.naive_ms.append(ms)
        row.same &= len(naive) == got[t]
    rows.append(row)

    # -- search -------------------------------------------------------------------------------
    cat = catalog()
    svc_ops = [(s, op) for s in cat.services[:6] for op in cat.server_ops[s][:4]]
    searches: list[tuple[str, str, list[TraceQuery]]] = []
    for label, (lo, hi) in (("last hour", LAST_HOUR), ("whole day", (None, None))):
        qs = []
        for i in rng.permutation(len(svc_ops))[:repeat]:
            service, op = svc_ops[int(i)]
            qs.append(TraceQuery(service_name=service, operation_name=op, duration_min_ns=2_000_000,
                                 duration_max_ns=2_000_000_000, start_min_ns=lo, start_max_ns=hi, limit=20))
        searches.append((f"search service + operation + duration, {label}", "<= 30 ms p50", qs))
        users = rng.choice(USERS, size=repeat, replace=False)
        qs = [TraceQuery(attributes=(("enduser.id", f"user-{u}"),), start_min_ns=lo, start_max_ns=hi, limit=20) for u in users]
        searches.append((f"search one attribute value (enduser.id), {label}", "<= 100 ms p50", qs))
    reader = store._reader  # noqa: SLF001 - the lake baseline switches the file search off
    file_search = reader._find_in_files
    for name, target, qs in searches:
        if "attribute" in name:
            # The first attribute search over a window builds the row-group value filters of
            # its span files (once per immutable file; value_index.py): timed on its own.
            row = Row(name.replace("search one", "first search by one", 1) + ", value filters built")
            ms, _ = timed(lambda: store.find_trace_ids(TraceQuery(attributes=(("enduser.id", "user-0"),),
                                                                  start_min_ns=qs[0].start_min_ns,
                                                                  start_max_ns=qs[0].start_max_ns, limit=20)))
            row.store_ms.append(ms)
            rows.append(row)
        row = Row(name, target=target)
        lake = Row("  the same through DuckLake SQL (file search off), same queries interleaved")
        answers = []
        lake.same = True
        for q in qs:
            ms, found = timed(lambda: store.find_trace_ids(q))
            row.store_ms.append(ms)
            answers.append([(f.trace_id, f.start_ns, f.end_ns) for f in found])
            if lake_baseline:
                reader._find_in_files = lambda q: None  # noqa: SLF001
                try:
                    ms, again = timed(lambda: store.find_trace_ids(q))
                finally:
                    reader._find_in_files = file_search  # noqa: SLF001
                lake.store_ms.append(ms)
                lake.same &= [(f.trace_id, f.start_ns, f.end_ns) for f in again] == answers[-1]
        row.same = True
        for q, ans in zip(qs[:naive_repeat], answers):
            ms, naive = timed(lambda: cur.execute(*naive_search_sql(q)).fetchall())
            row.naive_ms.append(ms)
            row.same &= [tuple(r) for r in naive] == ans
        rows.append(row)
        if lake_baseline:
            rows.append(lake)

    # -- services and operations ----------------------------------------------------------------
    row = Row("services list, first call (per-file sets computed)")
    ms, services = timed(store.get_services)
    row.store_ms.append(ms)
    rows.append(row)
    row = Row("services list")
    for _ in range(repeat):
        ms, services = timed(store.get_services)
        row.store_ms.append(ms)
    for _ in range(naive_repeat):
        ms, naive = timed(lambda: cur.execute("SELECT DISTINCT service_name FROM lake.spans ORDER BY 1").fetchall())
        row.naive_ms.append(ms)
    row.same = [r[0] for r in naive] == services
    rows.append(row)
    row = Row("operations list")
    row.same = True
    for i in range(repeat):
        service = cat.services[i % len(cat.services)]
        ms, ops = timed(lambda: store.get_operations(service))
        row.store_ms.append(ms)
        if i < naive_repeat:
            ms, naive = timed(lambda: cur.execute("SELECT DISTINCT name, kind FROM lake.spans WHERE service_name = ? ORDER BY 1, 2", [service]).fetchall())
            row.naive_ms.append(ms)
            row.same &= [(o.name, o.span_kind) for o in ops] == [tuple(r) for r in naive]
    rows.append(row)

    # -- dependencies -------------------------------------------------------------------------
    row = Row("dependencies, whole day")
    for _ in range(max(1, naive_repeat)):
        ms, deps = timed(lambda: store.get_dependencies(DAY_START_NS, DAY_END_NS))
        row.store_ms.append(ms)
    for _ in range(max(1, naive_repeat // 2)):
        ms, naive = timed(lambda: cur.execute(NAIVE_DEPENDENCIES, [DAY_START_NS, DAY_END_NS]).fetchall())
        row.naive_ms.append(ms)
    row.same = [(d.parent, d.child, d.call_count, d.error_count) for d in deps] == [tuple(r) for r in naive]
    rows.append(row)

    # -- latency percentiles over an hour ------------------------------------------------------
    row = Row("latency p50/p95/p99 of an operation, 1 h (span_latency_rows)", target="<= 200 ms")
    row.same = True
    for i in range(repeat):
        service, op = svc_ops[int(rng.integers(0, len(svc_ops)))]
        lo = DAY_START_NS + int(rng.integers(0, 23)) * HOUR_NS

        def percentiles() -> list[float]:
            t = store.span_latency_rows(service, op, None, (), lo, lo + HOUR_NS)
            return [float(x) for x in np.percentile(t.column("duration_ns").to_numpy(), [50, 95, 99])]

        ms, ours = timed(percentiles)
        row.store_ms.append(ms)
        if i < naive_repeat:
            sql = "SELECT quantile_cont(duration_ns, [0.5, 0.95, 0.99]) FROM lake.spans WHERE service_name = ? AND name = ? AND start_ns >= ? AND start_ns < ?"
            ms, naive = timed(lambda: cur.execute(sql, [service, op, lo, lo + HOUR_NS]).fetchall())
            row.naive_ms.append(ms)
            row.same &= bool(np.allclose(ours, naive[0][0]))
    rows.append(row)
    row = Row("latency p50/p95/p99 per operation of a service, 1 h")
    sql_row = Row("  the same as one SQL statement (quantile_cont, GROUP BY)")
    row.same = True
    for i in range(max(1, repeat // 4)):
        service = cat.services[i % len(cat.services)]
        lo = DAY_START_NS + int(rng.integers(0, 23)) * HOUR_NS

        def per_operation() -> list[tuple[Any, ...]]:
            out = []
            for o in store.get_operations(service):
                t = store.span_latency_rows(service, o.name, o.span_kind, (), lo, lo + HOUR_NS)
                if t.num_rows:
                    d = t.column("duration_ns").to_numpy()
                    out.append((o.name, o.span_kind, t.num_rows, [float(x) for x in np.percentile(d, [50, 95, 99])]))
            return out

        ms, ours = timed(per_operation)
        row.store_ms.append(ms)
        ms, sql = timed(lambda: cur.execute(SQL_PERCENTILES, [service, lo, lo + HOUR_NS]).fetchall())
        sql_row.store_ms.append(ms)
        row.same &= [(a, b, c) for a, b, c, _ in ours] == [tuple(r[:3]) for r in sql] and all(
            np.allclose(p, r[3]) for (_, _, _, p), r in zip(ours, sql)
        )
    rows += [row, sql_row]

    # -- /api/spanlake/v1/latency figures over every matching span ---------------------------
    from spanlake.query.analysis.latency import LatencyColumns, latency_histogram, latency_series, summarize_latency

    for label, span_ns, step_ns in (("1 h", HOUR_NS, 60_000_000_000), ("whole day", DAY_NS, 1_800_000_000_000)):
        row = Row(f"latency endpoint figures of a service, {label} (every span, exact)")
        row.same = True
        for i in range(max(1, repeat // 4)):
            service = cat.services[i % len(cat.services)]
            lo = DAY_END_NS - span_ns

            def figures() -> tuple[int, int]:
                t = store.span_latency_rows(service, None, None, (), lo, DAY_END_NS, 50_000_000)
                cols = LatencyColumns.of_table(t)
                s = summarize_latency(cols)
                latency_histogram(cols)
                latency_series(cols, step_ns, start_ns=lo, end_ns=DAY_END_NS, examples=3)
                return s.count, s.p99_ns or 0

            ms, (count, p99) = timed(figures)
            row.store_ms.append(ms)
            if i < naive_repeat:
                naive = cur.execute(
                    "SELECT count(*), quantile_disc(duration_ns, 0.99) FROM lake.spans WHERE service_name = ? AND start_ns >= ? AND start_ns < ?",
                    [service, lo, DAY_END_NS],
                ).fetchall()[0]
                row.same &= naive[0] == count
        rows.append(row)
    return rows


def report(rows: list[Row]) -> None:
    print()
    print(f"{'query':58s} {'p50 ms':>8s} {'p99 ms':>8s} {'n':>4s}   {'naive p50':>10s} {'n':>3s}  same  target")
    for r in rows:
        naive = f"{statistics.median(r.naive_ms):10.1f} {len(r.naive_ms):3d}" if r.naive_ms else f"{'':10s} {'':3s}"
        same = "" if r.same is None else ("yes" if r.same else "NO")
        print(f"{r.name:58s} {pct(r.store_ms, 50):8.1f} {pct(r.store_ms, 99):8.1f} {len(r.store_ms):4d}   {naive}  {same:4s}  {r.target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=20, help="runs per query through the store (trace by id: 10x)")
    ap.add_argument("--naive-repeat", type=int, default=3, help="runs per naive query")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--lake-baseline", action="store_true",
                    help="also time each search with the file search off (DuckLake SQL), interleaved")
    ap.add_argument("--data-dir", default=None, help="default: a new folder under /tmp")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--reuse", default=None, help="query a data directory kept by an earlier run (never deleted)")
    args = ap.parse_args()
    data_dir = args.reuse or args.data_dir or tempfile.mkdtemp(prefix="spanlake-query-bench-", dir="/tmp")
    print(f"data dir {data_dir}; DuckDB threads={args.threads} memory_limit={args.memory_limit}; load average {os.getloadavg()[0]:.1f}")
    try:
        if args.reuse:
            store = DuckLakeStore(DuckLakeOptions(data_dir=data_dir, memory_limit=args.memory_limit, threads=args.threads, read_only=True))
        else:
            store = build(data_dir, args.spans, args.threads, args.memory_limit)
        try:
            rows = run(store, args.repeat, args.naive_repeat, args.seed, args.lake_baseline)
        finally:
            store.close()
        report(rows)
        print(f"\nload average {os.getloadavg()[0]:.1f}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        if args.keep or args.reuse:
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
