"""Logs ingest benchmark: durable log records/s through a real ``spanlake serve`` over OTLP/gRPC.

Run from the repository root::

    python -m bench.ingest_logs --seconds 12 --repeat 3

The machinery is :mod:`bench.ingest`'s (client processes sending pre-serialized requests, each
in flight on its own connection as separate SDK processes would be, every Export waiting for its
commit; a fresh DuckLake store on disk with a SQLite catalog per run); the requests are
:mod:`bench.log_workload`'s 512-record log requests; the defaults (one server process, 128
exporters from one client process) are :func:`bench.ingest.load_arguments`'.

It prints, as medians of ``--repeat`` runs:

* the decode-only rate of the same requests in this process;
* durable log records/s end to end (target: at least 100,000 on this machine), with the
  server's CPU time per record, bytes per record on disk after compaction and peak RSS;
* the span ingest rate of :mod:`bench.ingest`'s workload measured in turn with it (spans,
  logs, spans, logs...), as the baseline of the same run (``--no-span-baseline`` skips it).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from bench.ingest import SERVE_ARGS, SPANS, Run, Workload, decode_rate, load_arguments, measure
from bench.log_workload import RECORDS_PER_REQUEST, make_log_requests

LOGS = Workload("log records", "/opentelemetry.proto.collector.logs.v1.LogsService/Export", make_log_requests,
                RECORDS_PER_REQUEST)
TARGET = 100_000


def _decoded_logs(body: bytes) -> int:
    from spanlake.collector.decode_logs import decode_logs_protobuf

    return decode_logs_protobuf(body).batch.num_logs


def _medians(runs: list[Run]) -> tuple[float, float, float, float]:
    return (
        statistics.median(r.rate for r in runs),
        statistics.median(r.cpu_us for r in runs),
        statistics.median(r.bytes_per_item for r in runs),
        statistics.median(r.peak_rss for r in runs) / 2**20,
    )


def main() -> None:
    ap = load_arguments(__doc__, seconds=12)
    ap.add_argument("--no-span-baseline", dest="span_baseline", action="store_false",
                    help="skip the span runs measured in turn with the log runs")
    args = ap.parse_args()
    SERVE_ARGS.extend(args.serve_arg)

    requests = make_log_requests(24, seed=1)
    size = sum(len(b) for b in requests) / (24 * RECORDS_PER_REQUEST)
    print(f"workload: {RECORDS_PER_REQUEST} log records/request, {size:.0f} bytes/record on the wire")
    base = decode_rate(requests, args.repeat, _decoded_logs)
    print(f"decode only, 1 process: {base:,.0f} log records/s (median of {args.repeat})")

    logs: list[Run] = []
    spans: list[Run] = []
    root = Path(tempfile.mkdtemp(prefix="spanlake-bench-logs-"))
    try:
        for r in range(args.repeat):
            if args.span_baseline:
                spans.append(measure(root / f"spans{r}", args.workers, [], args.clients, args.seconds,
                                     args.inflight, SPANS))
                print(f"  run {r}, spans (baseline): {spans[-1].describe()}")
            logs.append(measure(root / f"logs{r}", args.workers, [], args.clients, args.seconds, args.inflight, LOGS))
            print(f"  run {r}, logs: {logs[-1].describe()}")
        rate, cpu, bpr, rss = _medians(logs)
        n = args.repeat
        print(f"logs end to end, --workers {args.workers}: {rate:,.0f} durable log records/s (median of {n}); "
              f"target {TARGET:,}: {'met' if rate >= TARGET else f'missed by {TARGET / rate:.2f}x'}")
        print(f"  server CPU {cpu:.1f} us/record, {bpr:.1f} B/record on disk after compaction, peak RSS {rss:.0f} MiB")
        if spans:
            srate, scpu, sbps, srss = _medians(spans)
            print(f"spans end to end (baseline, same run): {srate:,.0f} durable spans/s (median of {n}); "
                  f"server CPU {scpu:.1f} us/span, {sbps:.1f} B/span, peak RSS {srss:.0f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
