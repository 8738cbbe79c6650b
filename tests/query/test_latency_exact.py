"""``/api/spanlake/v1`` latency figures are exact over the whole range, on every backend.

2,500 traces (more than the 2,000 the endpoints used to scan) of three spans each; the expected
figures are computed here from the spans sent: nearest-rank percentiles, the log-bucket grid of
``analysis/latency.py``, and per-step figures.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from spanlake.config import load_config
from spanlake.query.analysis.latency import bucket_bounds, bucket_index
from spanlake.query.api.app import create_app
from spanlake.storage.api import Store
from spanlake.storage.memory import MemoryStore
from tests.storage_suite.builders import BASE_NS, MS, SEC, BatchBuilder, sid, tid

V1 = "/api/spanlake/v1"
N = 2_500
T0 = BASE_NS + 10 * SEC
RANGE = {"start": BASE_NS, "end": BASE_NS + 3 * 3600 * SEC}


def root_ms(k: int) -> int:
    return 1 + (k * 7919) % 997  # 1..997 ms, scattered over time


def is_error(k: int) -> bool:
    return k % 13 == 0


def db_ns(k: int) -> int:
    return (k % 50 + 1) * 100_000  # 0.1..5 ms


def _batches() -> list[BatchBuilder]:
    out = []
    for lo in range(0, N, 500):  # five commits
        b = BatchBuilder()
        for k in range(lo, lo + 500):
            t = tid(0x10000 + k)
            start = T0 + k * 2 * SEC
            b.span(t, sid(1), None, name="GET /orders", kind=2, start_ns=start, duration_ns=root_ms(k) * MS,
                   service="shop", status_code=2 if is_error(k) else 1,
                   attributes={"tier": "gold" if k % 4 == 0 else "basic"})
            b.span(t, sid(2), sid(1), name="SELECT orders", kind=3, start_ns=start + MS, duration_ns=db_ns(k),
                   service="shop")
            b.span(t, sid(3), sid(2), name="query", kind=2, start_ns=start + MS + 10_000, duration_ns=db_ns(k) // 2,
                   service="db")
        out.append(b)
    return out


@pytest.fixture(scope="module", params=["memory", "ducklake-sqlite"])
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store: Store
    if request.param == "memory":
        store = MemoryStore()
    else:
        from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

        root = Path(tmp_path_factory.mktemp("lat-exact"))
        store = DuckLakeStore(DuckLakeOptions(data_dir=str(root / "lake"), commit_interval_ms=5,
                                              maintenance_interval_s=0, memory_limit="1GB", threads=2))
    for b in _batches():
        store.write_spans(b.build()).result(timeout=60)
    with TestClient(create_app(load_config(environ={}), store)) as c:
        yield c
    store.close()


def get(client: TestClient, path: str, **params: object) -> dict:
    r = client.get(V1 + path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def expected(durations: list[int], errors: list[bool]) -> dict:
    n = len(durations)
    s = sorted(durations)
    rank = {q: s[max(math.ceil(q * n) - 1, 0)] for q in (0.5, 0.9, 0.95, 0.99)}
    return {"count": n, "errorCount": sum(errors), "p50Ns": rank[0.5], "p90Ns": rank[0.9], "p95Ns": rank[0.95],
            "p99Ns": rank[0.99], "maxNs": s[-1]}


def figures(doc: dict) -> dict:
    return {k: doc[k] for k in ("count", "errorCount", "p50Ns", "p90Ns", "p95Ns", "p99Ns", "maxNs")}


def test_summary_histogram_and_series_cover_every_span(client: TestClient) -> None:
    doc = get(client, "/latency", service="shop", operation="GET /orders", step="10m", bucketsPerDecade=5, **RANGE)
    durations = [root_ms(k) * MS for k in range(N)]
    errors = [is_error(k) for k in range(N)]
    assert figures(doc["summary"]) == expected(durations, errors)
    assert doc["summary"]["errorRate"] == pytest.approx(sum(errors) / N)
    assert doc["tracesScanned"] == N and not doc["truncated"] and doc["coveredStartNs"] == RANGE["start"]

    want: dict[int, list[int]] = {}
    for k, d in enumerate(durations):
        want.setdefault(bucket_index(d, 5), [0, 0, k])
        want[bucket_index(d, 5)][0] += 1
        want[bucket_index(d, 5)][1] += errors[k]
    got = {(b["lowerNs"], b["upperNs"]): b for b in doc["histogram"] if b["count"]}
    assert set(got) == {bucket_bounds(k, 5) for k in want}
    for k, (count, errs, first) in want.items():
        b = got[bucket_bounds(k, 5)]
        assert (b["count"], b["errorCount"]) == (count, errs)
        assert b["exampleTraceIds"][0] == tid(0x10000 + first).hex()  # the earliest span of the bucket

    step = 600 * SEC
    first = RANGE["start"] // step * step  # steps are aligned to multiples of the step
    assert doc["stepNs"] == step and len(doc["series"]) == -(-(RANGE["end"] - first) // step)
    assert sum(p["count"] for p in doc["series"]) == N
    for p in doc["series"]:
        ks = [k for k in range(N) if p["timeNs"] <= T0 + k * 2 * SEC < p["timeNs"] + step]
        if not ks:
            assert p["count"] == 0
            continue
        assert figures(p) == expected([durations[k] for k in ks], [errors[k] for k in ks])
        slowest = max(ks, key=lambda k: (durations[k], -k))
        assert p["exampleTraceIds"][0] == tid(0x10000 + slowest).hex()


def test_filters_all_services_and_durations(client: TestClient) -> None:
    everything = get(client, "/latency", step="1h", **RANGE)["summary"]
    assert everything["count"] == 3 * N
    gold = get(client, "/latency", service="shop", attr="tier=gold", step="1h", **RANGE)["summary"]
    ks = [k for k in range(N) if k % 4 == 0]
    assert figures(gold) == expected([root_ms(k) * MS for k in ks], [is_error(k) for k in ks])
    slow = get(client, "/latency", service="shop", minDuration="500ms", maxDuration="900ms", step="1h", **RANGE)
    ks = [k for k in range(N) if 500 <= root_ms(k) <= 900]
    assert figures(slow["summary"]) == expected([root_ms(k) * MS for k in ks], [is_error(k) for k in ks])
    db = get(client, "/latency", service="db", spanKind="server", step="1h", **RANGE)["summary"]
    assert figures(db) == expected([db_ns(k) // 2 for k in range(N)], [False] * N)
    # A window inside the range: spans starting in [start, end) only.
    part = get(client, "/latency", service="db", start=T0 + 100 * SEC, end=T0 + 200 * SEC, step="10s")["summary"]
    assert part["count"] == 50


def test_span_cap_keeps_the_latest(client: TestClient) -> None:
    doc = get(client, "/latency", service="shop", operation="GET /orders", maxSpans=100, step="1h", **RANGE)
    assert doc["truncated"] and doc["summary"]["count"] == 100
    assert doc["coveredStartNs"] == T0 + (N - 100) * 2 * SEC


def test_operation_stats_cover_every_span(client: TestClient) -> None:
    doc = get(client, "/services/shop/operations/stats", **RANGE)
    ops = {(o["name"], o["spanKind"]): o for o in doc["operations"]}
    assert set(ops) == {("GET /orders", "server"), ("SELECT orders", "client")}
    root = ops[("GET /orders", "server")]
    assert figures(root) == expected([root_ms(k) * MS for k in range(N)], [is_error(k) for k in range(N)])
    assert root["totalNs"] == sum(root_ms(k) * MS for k in range(N))
    assert ops[("SELECT orders", "client")]["count"] == N and not doc["truncated"]


def test_vectorised_buckets_match_the_scalar_function() -> None:
    import numpy as np

    from spanlake.query.analysis.latency import bucket_indexes

    rng = np.random.default_rng(0)
    for b in (1, 2, 5, 10, 50):
        edges = [bucket_bounds(k, b)[0] + delta for k in range(12 * b) for delta in (-1, 0, 1)]
        d = np.concatenate([rng.integers(0, 10**12, 5_000), rng.integers(0, 300, 1_000), np.array(edges)])
        assert bucket_indexes(d, b).tolist() == [bucket_index(int(x), b) for x in d]
