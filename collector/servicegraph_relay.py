"""Service-graph halves between receiver processes: ``--workers`` forward, the main process pairs.

With ``--workers N`` the kernel spreads OTLP connections over the processes (SO_REUSEPORT), so
the client half and the server half of one call often reach different processes. The main
process's :class:`~spanlake.collector.servicegraph.ServiceGraph` is the one place where halves
wait for each other: each worker's graph is in forwarding mode and sends what it could not pair
itself over a one-way pipe, one message per aggregation pass (every ``process_interval``, so
batched), holding only the columns pairing needs (trace id, key, service, kind, failed,
duration, peer: some 60 bytes a half), never whole spans.

A message is the two tables as Arrow IPC streams, the first one's length in front::

    <u64 little-endian: length of A> <A: clients stream> <servers stream>

:class:`HalfRelay` reads every worker's pipe on one thread of the main process and hands the
halves to the graph's :meth:`~spanlake.collector.servicegraph.ServiceGraph.receive`. A worker
that exits (or dies) closes its pipe; the relay logs it and goes on with the others, so a dead
worker never blocks the main process. Halves in flight from a dying worker are lost, as its
uncommitted spans are.
"""

from __future__ import annotations

import logging
import struct
import threading
from multiprocessing.connection import Connection, wait
from typing import Mapping

import pyarrow as pa
from prometheus_client import Counter

from spanlake.collector.servicegraph import HALF_SCHEMAS, ServiceGraph

log = logging.getLogger("spanlake.collector.servicegraph")

_LENGTH = struct.Struct("<Q")

RELAYED_HALVES = Counter(
    "spanlake_service_graph_relayed_halves",
    "Unpaired service-graph halves (client or server side) receiver workers sent to the main process for pairing.",
    ["side"],
)


def encode_halves(clients: pa.Table, servers: pa.Table) -> bytes:
    parts = []
    for table, schema in zip((clients, servers), HALF_SCHEMAS):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table.cast(schema) if table.schema != schema else table)
        parts.append(sink.getvalue())
    return _LENGTH.pack(parts[0].size) + parts[0].to_pybytes() + parts[1].to_pybytes()


def decode_halves(data: bytes) -> tuple[pa.Table, pa.Table]:
    """The (clients, servers) of a message; ValueError when it is not one."""
    buf = pa.py_buffer(data)
    if buf.size < _LENGTH.size:
        raise ValueError("service-graph message too short")
    (n,) = _LENGTH.unpack_from(data)
    if _LENGTH.size + n > buf.size:
        raise ValueError("service-graph message truncated")
    tables = []
    for part, schema in zip((buf.slice(_LENGTH.size, n), buf.slice(_LENGTH.size + n)), HALF_SCHEMAS):
        try:
            table = pa.ipc.open_stream(part).read_all()
        except pa.ArrowInvalid as e:
            raise ValueError(f"bad service-graph message: {e}") from None
        if table.schema != schema:
            raise ValueError(f"service-graph message has schema {table.schema}, expected {schema}")
        tables.append(table)
    return tables[0], tables[1]


class HalfSender:
    """Worker side: a :data:`~spanlake.collector.servicegraph.Forward` writing to a pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def __call__(self, clients: pa.Table, servers: pa.Table) -> None:
        self._conn.send_bytes(encode_halves(clients, servers))

    def close(self) -> None:
        """Close the pipe (after the last pass of the aggregation): the relay sees the end."""
        self._conn.close()


class HalfRelay:
    """Main process: reads the workers' pipes on one thread and feeds ``graph``."""

    def __init__(self, graph: ServiceGraph, conns: Mapping[Connection, str]) -> None:
        self.graph = graph
        self._names = dict(conns)
        self._closing = threading.Event()  # the workers are being stopped: their pipes will close
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spanlake-servicegraph-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        live = self._names
        while live and not self._stop.is_set():
            for conn in wait(list(live), timeout=0.5):
                assert isinstance(conn, Connection)
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    name = live.pop(conn)
                    conn.close()
                    if self._closing.is_set():
                        log.debug("service-graph channel closed", extra={"worker": name})
                    else:
                        log.warning("service-graph channel closed: worker exited; its unsent halves are lost",
                                    extra={"worker": name})
                    continue
                try:
                    clients, servers = decode_halves(data)
                except ValueError as e:
                    log.error("dropping a service-graph message", extra={"worker": live[conn], "error": str(e)})
                    continue
                self.graph.receive(clients, servers)
                RELAYED_HALVES.labels("client").inc(clients.num_rows)
                RELAYED_HALVES.labels("server").inc(servers.num_rows)
        for conn in live:
            conn.close()

    @property
    def open_channels(self) -> int:
        return len(self._names)

    def close(self, timeout: float = 30.0) -> None:
        """Call once the workers were told to stop: waits until every worker closed its pipe
        (after its last aggregation pass), at most ``timeout`` seconds, then stops reading.
        Everything received is in the graph's inbox by then. Idempotent."""
        self._closing.set()
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join(2.0)
