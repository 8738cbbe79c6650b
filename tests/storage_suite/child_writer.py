"""A separate OS process that writes spans into a DuckLake store (concurrency and crash tests).

Usage: python child_writer.py OPTIONS_JSON WRITER_NO BATCHES SPANS_PER_BATCH

Writes BATCHES batches, each one trace of SPANS_PER_BATCH spans with the trace id
``writer_trace_id(WRITER_NO, i)``, keeping a few writes in flight. After each acknowledged
batch it prints ``ack <i>``; at the end ``done``. BATCHES 0 means: go on until killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from storage_suite.builders import BASE_NS, MS, BatchBuilder, sid  # noqa: E402

from spanlake.model import SpanBatch  # noqa: E402
from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore  # noqa: E402


def writer_trace_id(writer: int, i: int) -> bytes:
    return b"W" + writer.to_bytes(3, "big") + i.to_bytes(12, "big")


def trace_batch(writer: int, i: int, n: int) -> SpanBatch:
    b = BatchBuilder()
    trace = writer_trace_id(writer, i)
    for j in range(n):
        b.span(trace, sid(j + 1), sid(1) if j else None, name=f"w{writer}-op", start_ns=BASE_NS + i * MS + j,
               service=f"writer-{writer}", attributes={"j": j})
    return b.build()


def spawn(options: dict, writer: int, batches: int, spans: int) -> "subprocess.Popen[str]":
    """Start this script in a new Python process (stdout: "ready", "ack <i>"..., "done")."""
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), json.dumps(options), str(writer), str(batches), str(spans)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    options = DuckLakeOptions(**json.loads(sys.argv[1]))
    writer, batches, spans = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    store = DuckLakeStore(options)
    print("ready", flush=True)
    in_flight: deque = deque()
    i = 0
    while batches == 0 or i < batches or in_flight:
        if (batches == 0 or i < batches) and len(in_flight) < 4:
            in_flight.append((i, store.write_spans(trace_batch(writer, i, spans))))
            i += 1
            continue
        done_i, fut = in_flight.popleft()
        fut.result(timeout=60)
        print(f"ack {done_i}", flush=True)
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
