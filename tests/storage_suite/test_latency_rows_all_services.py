"""``span_latency_rows`` with ``service=None``: every service's matching spans, on every backend
(the data set and store fixture of ``test_latency_rows.py``)."""

from __future__ import annotations

from spanlake.storage.api import Store

from .builders import MS, SEC, tid
from .test_latency_rows import T, lat_store, rows  # noqa: F401  (lat_store is a fixture)


def test_every_service_when_service_is_none(lat_store: Store) -> None:  # noqa: F811
    t = rows(lat_store, service=None)
    # GET /pay of lat-svc (5 spans) and of lat-other (1, at the same start as lat1), in start order.
    assert sorted(zip(t.column("start_ns").to_pylist(), t.column("trace_id").to_pylist())) == sorted(
        [(T + i * SEC, tid(f"lat{i}")) for i in range(5)] + [(T + SEC, tid("lat-other"))]
    )
    assert t.column("start_ns").to_pylist() == sorted(t.column("start_ns").to_pylist())
    # Those 6, their 5 SELECT children, and the 6 ent-svc / ent-other spans in the window.
    assert rows(lat_store, service=None, operation=None).num_rows == 17
    assert rows(lat_store, service=None, operation=None, start_ns=T - 20 * SEC).num_rows == 19
    assert rows(lat_store, service=None, attributes=(("customer", "acme"),)).num_rows == 3
    durations = rows(lat_store, service=None, operation=None, span_kind=3).column("duration_ns").to_pylist()
    assert durations == [2 * MS] * 5 + [25 * MS]  # the SELECTs, then ent-other's call
