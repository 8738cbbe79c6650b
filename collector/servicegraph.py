"""Service graph: requests between services, from client/server and producer/consumer pairs.

As the OTel Collector's ``servicegraph`` connector (and Tempo's processor) pair them: a CLIENT
or PRODUCER span waits under ``(trace_id, span_id)``, a SERVER or CONSUMER span under
``(trace_id, parent_span_id)``; when both halves are there, the edge ``client -> server`` counts
one request (failed if either side has status ERROR) with the client's and the server's
duration. Producer/consumer pairs are ``connection_type="messaging_system"``.

Halves wait in a bounded store (Arrow tables, ``max_pending`` rows a side) for ``wait``, so the
two halves of a call may arrive in different requests. Besides pairs:

* a CLIENT span with ``db.system`` or ``db.name`` is a database call and completes at once:
  ``connection_type="database"``, the server named by ``peer.service``, ``db.name`` or
  ``db.system``, whichever comes first;
* a SERVER or CONSUMER span without a parent had an uninstrumented caller and completes at once
  with ``client="user"``, ``connection_type="virtual_node"``;
* a client half still unpaired after ``wait`` (an uninstrumented callee) completes as a virtual
  node named by ``peer.service``, ``db.name`` or ``db.system`` (else ``unknown``); a server
  half still unpaired is counted in ``traces_service_graph_unpaired_spans_total`` only. Both
  count there, labelled with their own service.

Virtual-node edges only have the duration of the side that was measured.

With ``--workers N`` the halves of a call may reach different processes, so the main process's
graph is the one pairing authority: a worker's graph is put in forwarding mode
(:meth:`ServiceGraph.forward_to`) and, after pairing what one aggregation pass holds, sends the
halves left over (a few columns, batched) to the main process, whose graph takes them in with
:meth:`ServiceGraph.receive` and pairs and expires them with its own. Edges that need no
pairing (databases, callers without a parent) and pairs found within one worker's pass are
counted by that worker, so every edge is counted by exactly one process.
:mod:`spanlake.collector.servicegraph_relay` carries the halves between processes.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.series_limit import OVERFLOW_KEY, OVERFLOW_LABELS, SeriesLimit
from spanlake.collector.spanmetrics import decode_label_values
from spanlake.metrics_model import (
    DELTA,
    DELTA_HISTOGRAM,
    SERVICE_GRAPH_BOUNDS_S,
    SERVICE_GRAPH_CLIENT,
    SERVICE_GRAPH_DROPPED,
    SERVICE_GRAPH_FAILED,
    SERVICE_GRAPH_REQUESTS,
    SERVICE_GRAPH_SERVER,
    SERVICE_GRAPH_UNPAIRED,
    SampleRows,
)
from spanlake.model import SpanBatch

log = logging.getLogger("spanlake.collector.servicegraph")

CLIENT, SERVER, PRODUCER, CONSUMER = 3, 2, 4, 5
PEER_ATTRIBUTES = ("peer.service", "db.name", "db.system")
DATABASE_ATTRIBUTES = ("db.system", "db.name")
USER, UNKNOWN = "user", "unknown"
MESSAGING, DATABASE, VIRTUAL = "messaging_system", "database", "virtual_node"

_KEYS = ["trace_id", "key"]
_CLIENT_COLUMNS = ["trace_id", "span_id", "service_name", "kind", "status_code", "duration_ns",
                   "attr_peer_service", "attr_db_system"]
_SERVER_COLUMNS = ["trace_id", "parent_span_id", "service_name", "kind", "status_code", "duration_ns"]
_CLIENT_SCHEMA = pa.schema([("trace_id", pa.binary()), ("key", pa.binary()), ("c_service", pa.string()),
                            ("c_kind", pa.uint8()), ("c_failed", pa.bool_()), ("c_dur", pa.int64()),
                            ("c_seen", pa.int64()), ("c_peer", pa.string())])
_SERVER_SCHEMA = pa.schema([("trace_id", pa.binary()), ("key", pa.binary()), ("s_service", pa.string()),
                            ("s_kind", pa.uint8()), ("s_failed", pa.bool_()), ("s_dur", pa.int64()),
                            ("s_seen", pa.int64())])
#: What waiting halves look like: the tables :meth:`ServiceGraph.forward_to` sends and
#: :meth:`ServiceGraph.receive` takes (``*_seen`` is restamped by the receiving graph).
HALF_SCHEMAS = (_CLIENT_SCHEMA, _SERVER_SCHEMA)
#: Sends a worker's leftover (clients, servers) halves to the pairing process.
Forward = Callable[[pa.Table, pa.Table], None]


@dataclass
class _Edge:
    total: int = 0
    failed: int = 0
    client: np.ndarray = field(default_factory=lambda: np.zeros(len(SERVICE_GRAPH_BOUNDS_S) + 1, np.int64))
    client_sum_ns: int = 0
    server: np.ndarray = field(default_factory=lambda: np.zeros(len(SERVICE_GRAPH_BOUNDS_S) + 1, np.int64))
    server_sum_ns: int = 0


class ServiceGraph:
    """Pairs halves and accumulates edges between flushes; used by one thread, except
    :meth:`receive`, which any thread may call."""

    def __init__(
        self,
        wait_ns: int = 10_000_000_000,
        max_pending: int = 100_000,
        cardinality_limit: int = 0,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.wait_ns = wait_ns
        self.max_pending = max_pending
        self.clock = clock
        self.limit = SeriesLimit(cardinality_limit)
        self._bounds_ns = np.array([round(b * 1e9) for b in SERVICE_GRAPH_BOUNDS_S], dtype=np.int64)
        self._clients = _CLIENT_SCHEMA.empty_table()
        self._servers = _SERVER_SCHEMA.empty_table()
        self._edges: dict[tuple, _Edge] = {}
        self._unpaired: dict[tuple[str, str], int] = {}  # (side label, service) -> count
        self._dropped: dict[tuple[str, str], int] = {}
        self._forward: Forward | None = None
        self._inbox: deque[tuple[pa.Table, pa.Table]] = deque()  # append/popleft are thread-safe

    @property
    def pending(self) -> int:
        return self._clients.num_rows + self._servers.num_rows

    # -- across processes -----------------------------------------------------------------

    def forward_to(self, send: Forward | None) -> None:
        """Forwarding mode (a ``--workers`` receiver): halves still unpaired at the end of
        :meth:`observe` go to ``send(clients, servers)`` instead of waiting here; ``None`` turns
        it off. If ``send`` raises (the pairing process is gone) the graph logs it and falls
        back to pairing on its own."""
        self._forward = send

    def receive(self, clients: pa.Table, servers: pa.Table) -> None:
        """Halves another process forwarded (any thread; tables of :data:`HALF_SCHEMAS`). They
        are paired at the next :meth:`observe` or :meth:`expire` and wait ``wait`` from then."""
        self._inbox.append((clients, servers))

    def _take_inbox(self, now: int) -> None:
        clients, servers = [self._clients], [self._servers]
        while self._inbox:
            c, s = self._inbox.popleft()
            if c.num_rows:
                clients.append(c.set_column(c.schema.get_field_index("c_seen"), "c_seen",
                                            pa.array(np.full(c.num_rows, now), pa.int64())))
            if s.num_rows:
                servers.append(s.set_column(s.schema.get_field_index("s_seen"), "s_seen",
                                            pa.array(np.full(s.num_rows, now), pa.int64())))
        if len(clients) > 1:
            self._clients = pa.concat_tables(clients)
        if len(servers) > 1:
            self._servers = pa.concat_tables(servers)

    def _send_pending(self) -> None:
        c, s = self._clients, self._servers
        if not (c.num_rows or s.num_rows):
            return
        try:
            self._forward(c, s)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - whatever the channel raises, pair here instead
            log.warning("cannot forward service-graph halves; pairing in this process from now on: %s", exc)
            self._forward = None
            return
        self._clients, self._servers = _CLIENT_SCHEMA.empty_table(), _SERVER_SCHEMA.empty_table()

    # -- intake ---------------------------------------------------------------------------

    def observe(self, batch: SpanBatch) -> None:
        spans = batch.spans
        now = self.clock()
        if spans.num_rows:
            kind = spans.column("kind").to_numpy()
            clients = np.flatnonzero((kind == CLIENT) | (kind == PRODUCER))
            servers = np.flatnonzero((kind == SERVER) | (kind == CONSUMER))
            if len(clients):
                self._take_clients(batch, clients, now)
            if len(servers):
                self._take_servers(spans.select(_SERVER_COLUMNS).take(servers), now)
        self._settle(now, new_halves=True)

    def _take_clients(self, batch: SpanBatch, rows: np.ndarray, now: int) -> None:
        spans = batch.spans.select(_CLIENT_COLUMNS).take(rows)
        kind = spans.column("kind").to_numpy()
        peer_service = spans.column("attr_peer_service").combine_chunks()
        db_system = spans.column("attr_db_system").combine_chunks()
        # db.name lives in the attribute map: look it up only where it can change the outcome
        # (no db.system to tell a database call, or no peer.service to name the peer).
        need = np.asarray(pc.is_null(peer_service)) | ((kind == CLIENT) & np.asarray(pc.is_null(db_system)))
        db_name = pa.nulls(len(rows), pa.string())
        if need.any():
            found = pc.map_lookup(batch.spans.column("attributes").take(rows[need]), "db.name", "first")
            db_name = pc.replace_with_mask(db_name, pa.array(need), found.combine_chunks())
        db = (kind == CLIENT) & np.asarray(pc.or_(pc.is_valid(db_system), pc.is_valid(db_name)))
        peer = decode_label_values(pc.coalesce(peer_service, db_name, db_system))
        failed = pc.equal(spans.column("status_code"), 2)
        duration = pc.max_element_wise(spans.column("duration_ns"), 0)
        if db.any():
            mask = pa.array(db)
            self._add_edges(
                pc.filter(spans.column("service_name"), mask), pc.fill_null(pc.filter(peer, mask), UNKNOWN),
                DATABASE, pc.filter(failed, mask), pc.filter(duration, mask), None,
            )
            keep = pa.array(~db)
            spans, peer, failed, duration = spans.filter(keep), pc.filter(peer, keep), pc.filter(failed, keep), \
                pc.filter(duration, keep)
            if spans.num_rows == 0:
                return
        half = pa.table([spans.column("trace_id"), spans.column("span_id"), spans.column("service_name"),
                         spans.column("kind"), failed, duration, pa.array(np.full(spans.num_rows, now)), peer],
                        schema=_CLIENT_SCHEMA)
        self._clients = pa.concat_tables([self._clients, half])

    def _take_servers(self, spans: pa.Table, now: int) -> None:
        failed = pc.equal(spans.column("status_code"), 2)
        duration = pc.max_element_wise(spans.column("duration_ns"), 0)
        parent = spans.column("parent_span_id")
        root = pc.fill_null(pc.equal(pc.binary_length(parent), 0), True)
        if pc.any(root).as_py():
            services = pc.filter(spans.column("service_name"), root)
            self._add_edges(pa.array([USER] * len(services), pa.string()), services, VIRTUAL,
                            pc.filter(failed, root), None, pc.filter(duration, root))
            keep = pc.invert(root)
            spans, failed, duration, parent = (spans.filter(keep), pc.filter(failed, keep), pc.filter(duration, keep),
                                               pc.filter(parent, keep))
            if spans.num_rows == 0:
                return
        half = pa.table([spans.column("trace_id"), parent, spans.column("service_name"), spans.column("kind"),
                         failed, duration, pa.array(np.full(spans.num_rows, now))], schema=_SERVER_SCHEMA)
        self._servers = pa.concat_tables([self._servers, half])

    # -- pairing and expiry ---------------------------------------------------------------

    def expire(self) -> None:
        """Pair what :meth:`receive` brought and complete or count the halves that waited
        longer than ``wait`` (called when no spans come)."""
        self._settle(self.clock(), new_halves=False)

    def _settle(self, now: int, new_halves: bool) -> None:
        """Take what :meth:`receive` brought, pair when any half is new, then send the leftovers
        on (forwarding mode) or complete and count those that waited too long."""
        if self._inbox:
            self._take_inbox(now)
            new_halves = True
        if new_halves:
            self._pair()
        if self._forward is not None:
            self._send_pending()
            return
        self._expire(now)

    def _pair(self) -> None:
        c, s = self._clients, self._servers
        if c.num_rows == 0 or s.num_rows == 0:
            return
        c = c.append_column("c_row", pa.array(np.arange(c.num_rows)))
        s = s.append_column("s_row", pa.array(np.arange(s.num_rows)))
        m = c.join(s, keys=_KEYS, join_type="inner", use_threads=False)
        if m.num_rows == 0:
            return
        messaging = pc.or_(pc.is_in(m.column("c_kind"), pa.array([PRODUCER], pa.uint8())),
                           pc.is_in(m.column("s_kind"), pa.array([CONSUMER], pa.uint8())))
        ctype = pc.if_else(messaging, MESSAGING, "")
        self._add_edges(m.column("c_service"), m.column("s_service"), ctype,
                        pc.or_(m.column("c_failed"), m.column("s_failed")), m.column("c_dur"), m.column("s_dur"))
        self._clients = _without(self._clients, m.column("c_row"))
        self._servers = _without(self._servers, m.column("s_row"))

    def _expire(self, now: int) -> None:
        cutoff = now - self.wait_ns
        c = self._clients
        if c.num_rows:
            old = pc.less(c.column("c_seen"), cutoff)
            if pc.any(old).as_py():
                gone = c.filter(old)
                self._add_edges(gone.column("c_service"), pc.fill_null(gone.column("c_peer"), UNKNOWN), VIRTUAL,
                                gone.column("c_failed"), gone.column("c_dur"), None)
                _count_by(self._unpaired, "client", gone.column("c_service"))
                self._clients = c = c.filter(pc.invert(old))
            if c.num_rows > self.max_pending:
                self._clients, dropped = _newest(c, "c_seen", self.max_pending)
                _count_by(self._dropped, "client", dropped.column("c_service"))
        s = self._servers
        if s.num_rows:
            old = pc.less(s.column("s_seen"), cutoff)
            if pc.any(old).as_py():
                _count_by(self._unpaired, "server", s.filter(old).column("s_service"))
                self._servers = s = s.filter(pc.invert(old))
            if s.num_rows > self.max_pending:
                self._servers, dropped = _newest(s, "s_seen", self.max_pending)
                _count_by(self._dropped, "server", dropped.column("s_service"))

    # -- edges ----------------------------------------------------------------------------

    def _add_edges(self, client, server, ctype, failed, client_ns, server_ns) -> None:
        n = len(client)
        cols = {
            "client": client,
            "server": server,
            "ctype": ctype if not isinstance(ctype, str) else pa.array([ctype] * n, pa.string()),
            "failed": pc.cast(failed, pa.int64()),
        }
        for side, durations in (("c", client_ns), ("s", server_ns)):
            if durations is None:
                cols[side + "b"] = np.full(n, -1, np.int16)
                cols[side + "ns"] = np.zeros(n, np.int64)
            else:
                ns = np.asarray(pc.fill_null(durations, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
                cols[side + "b"] = np.searchsorted(self._bounds_ns, ns, side="left").astype(np.int16)
                cols[side + "ns"] = ns
        g = pa.table(cols).group_by(["client", "server", "ctype", "cb", "sb"], use_threads=False).aggregate(
            [("failed", "sum"), ("failed", "count"), ("cns", "sum"), ("sns", "sum")]
        )
        rows = zip(*(g.column(k).to_pylist() for k in
                     ("client", "server", "ctype", "cb", "sb", "failed_count", "failed_sum", "cns_sum", "sns_sum")))
        for cl, sv, ct, cb, sb, count, nfailed, cns, sns in rows:
            key = self.limit.admit((cl or "", sv or "", ct or ""))
            e = self._edges.get(key)
            if e is None:
                e = self._edges[key] = _Edge()
            e.total += count
            e.failed += nfailed
            if cb >= 0:
                e.client[cb] += count
                e.client_sum_ns += cns
            if sb >= 0:
                e.server[sb] += count
                e.server_sum_ns += sns

    def collect(self, time_ns: int, rows: SampleRows) -> None:
        """Append the interval's deltas to ``rows`` and start a new interval."""
        bounds = list(SERVICE_GRAPH_BOUNDS_S)
        for key, e in self._edges.items():
            if key == OVERFLOW_KEY:
                labels = OVERFLOW_LABELS
            else:
                labels = {"client": key[0], "server": key[1]}
                if key[2]:
                    labels["connection_type"] = key[2]
            rows.add(SERVICE_GRAPH_REQUESTS.name, labels, DELTA, time_ns, e.total, monotonic=True)
            rows.add(SERVICE_GRAPH_FAILED.name, labels, DELTA, time_ns, e.failed, monotonic=True)
            for metric, buckets, total in ((SERVICE_GRAPH_CLIENT, e.client, e.client_sum_ns),
                                           (SERVICE_GRAPH_SERVER, e.server, e.server_sum_ns)):
                count = int(buckets.sum())
                if count:
                    rows.add(metric.name, labels, DELTA_HISTOGRAM, time_ns, total / 1e9, monotonic=True,
                             count=count, bounds=bounds, buckets=buckets.tolist())
        for metric, counts in ((SERVICE_GRAPH_UNPAIRED, self._unpaired), (SERVICE_GRAPH_DROPPED, self._dropped)):
            for (side, service), n in counts.items():
                rows.add(metric.name, {side: service}, DELTA, time_ns, n, monotonic=True)
        self._edges, self._unpaired, self._dropped = {}, {}, {}
        self.limit.next_interval()


def _without(table: pa.Table, rows: pa.ChunkedArray) -> pa.Table:
    keep = np.ones(table.num_rows, dtype=bool)
    keep[rows.to_numpy()] = False
    return table.filter(pa.array(keep))


def _newest(table: pa.Table, seen: str, n: int) -> tuple[pa.Table, pa.Table]:
    order = np.argsort(table.column(seen).to_numpy(), kind="stable")
    cut = len(order) - n
    return table.take(pa.array(order[cut:])), table.take(pa.array(order[:cut]))


def _count_by(counts: dict[tuple[str, str], int], side: str, services: pa.ChunkedArray | pa.Array) -> None:
    values, n = np.unique(np.asarray(services.to_pylist(), dtype=object).astype(str), return_counts=True)
    for service, k in zip(values.tolist(), n.tolist()):
        counts[(side, service)] = counts.get((side, service), 0) + k
