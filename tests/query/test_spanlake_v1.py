"""Spanlake's own API (``/api/spanlake/v1``) over a MemoryStore, through the real app."""

from __future__ import annotations

import json
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from spanlake.config import load_config
from spanlake.query.analysis.trace_stats import analyze_trace
from spanlake.query.api import spanlake_v1_models as models
from spanlake.query.api.app import create_app
from spanlake.storage.memory import MemoryStore
from tests.storage_suite.builders import BASE_NS, MS, SEC, BatchBuilder, sid, tid

V1 = "/api/spanlake/v1"
T1, T2, MISSING = tid(0xA1), tid(0xB2), tid(0xDEAD)
RANGE = {"start": BASE_NS - SEC, "end": BASE_NS + 600 * SEC}


def checkout_trace(b: BatchBuilder, trace: bytes, t0: int, *, charge_ms: int, fail: bool, extra: bool) -> None:
    """front GET /checkout -> cart GET /cart, a parallel audit, pay charge (-> SELECT); optional cache span."""
    b.span(trace, sid(1), None, name="GET /checkout", kind=2, start_ns=t0, duration_ns=100 * MS, service="front",
           attributes={"http.route": "/checkout"})
    b.span(trace, sid(2), sid(1), name="call cart", kind=3, start_ns=t0 + 10 * MS, duration_ns=30 * MS, service="front")
    b.span(trace, sid(3), sid(2), name="GET /cart", kind=2, start_ns=t0 + 12 * MS, duration_ns=26 * MS, service="cart",
           attributes={"user.tier": "gold", "items": 3})
    b.span(trace, sid(8), sid(1), name="audit", kind=1, start_ns=t0 + 20 * MS, duration_ns=10 * MS, service="front")
    b.span(trace, sid(4), sid(1), name="call pay", kind=3, start_ns=t0 + 45 * MS, duration_ns=50 * MS, service="front")
    b.span(trace, sid(5), sid(4), name="charge", kind=2, start_ns=t0 + 47 * MS, duration_ns=charge_ms * MS,
           service="pay", status_code=2 if fail else 0, status_message="card declined" if fail else "",
           attributes={"payment.provider": "acme"},
           events=[{"time_ns": t0 + 67 * MS, "name": "exception", "attributes": {"exception.type": "Declined"}}] if fail else [],
           links=[{"trace_id": T1, "span_id": sid(1)}, {"trace_id": MISSING, "span_id": sid(9)}] if not fail else [])
    b.span(trace, sid(6), sid(5), name="SELECT", kind=3, start_ns=t0 + 50 * MS, duration_ns=10 * MS, service="pay",
           attributes={"db.system": "postgresql"})
    if extra:
        b.span(trace, sid(7), sid(3), name="cache GET", kind=3, start_ns=t0 + 14 * MS, duration_ns=2 * MS, service="cart")


def api_traces(b: BatchBuilder) -> None:
    """100 one-span requests to ``api`` 1 s apart, 1..100 ms; the 10 slowest come from region eu."""
    for k in range(100):
        b.span(tid(0x1000 + k), sid(1), None, name="GET /x", kind=2, start_ns=BASE_NS + 200 * SEC + k * SEC,
               duration_ns=(k + 1) * MS, service="api", status_code=2 if k % 10 == 9 else 0,
               attributes={"region": "eu" if k >= 90 else "us", "request.id": f"r{k}"})


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    store = MemoryStore()
    b = BatchBuilder()
    checkout_trace(b, T1, BASE_NS, charge_ms=46, fail=True, extra=False)
    checkout_trace(b, T2, BASE_NS + 100 * SEC, charge_ms=16, fail=False, extra=True)
    api_traces(b)
    store.write_spans(b.build())
    with TestClient(create_app(load_config(environ={}), store)) as c:
        yield c
    store.close()


def get(client: TestClient, path: str, **params) -> dict:
    r = client.get(V1 + path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


# --- services and search ------------------------------------------------------------------------


def test_services_and_operations(client: TestClient) -> None:
    assert get(client, "/services")["services"] == ["api", "cart", "front", "pay"]
    ops = get(client, "/services/front/operations")["operations"]
    assert {"name": "GET /checkout", "spanKind": "server"} in ops
    assert {o["name"] for o in get(client, "/services/front/operations", spanKind="client")["operations"]} == {
        "call cart", "call pay"}


def test_search_returns_summaries_most_recent_first(client: TestClient) -> None:
    doc = get(client, "/traces", service="front", **RANGE)
    models.TraceSearchResult.model_validate(doc)
    assert [t["traceId"] for t in doc["traces"]] == [T2.hex(), T1.hex()]
    t1 = doc["traces"][1]
    assert t1["rootService"] == "front" and t1["rootOperation"] == "GET /checkout"
    assert t1["durationNs"] == 100 * MS and t1["spanCount"] == 7 and t1["errorCount"] == 1
    assert {s["name"]: (s["spanCount"], s["errorCount"]) for s in t1["services"]} == {
        "front": (4, 0), "cart": (1, 0), "pay": (2, 1)}


@pytest.mark.parametrize("params, expected", [
    ({"attr": "payment.provider=acme"}, {T1, T2}),
    ({"attr": ["payment.provider=acme", "error=true"]}, {T1}),
    ({"service": "pay", "minDuration": "30ms"}, {T1}),
    ({"service": "pay", "operation": "charge", "maxDuration": "20ms"}, {T2}),
    ({"service": "cart", "spanKind": "client"}, {T2}),
    ({"service": "nobody"}, set()),
])
def test_search_filters(client: TestClient, params: dict, expected: set[bytes]) -> None:
    doc = get(client, "/traces", **RANGE, **params)
    assert {t["traceId"] for t in doc["traces"]} == {t.hex() for t in expected}


def test_search_limit_and_lookback(client: TestClient) -> None:
    assert len(get(client, "/traces", service="api", limit=5, **RANGE)["traces"]) == 5
    # The fixture lies in 2023; the default lookback (1h before now) finds none of it.
    doc = get(client, "/traces", service="api")
    assert doc["traces"] == [] and doc["endNs"] - doc["startNs"] == 3600 * SEC


@pytest.mark.parametrize("params, status, fragment", [
    ({"attr": "novalue"}, 400, "key=value"),
    ({"minDuration": "fast"}, 400, "minDuration"),
    ({"minDuration": "2s", "maxDuration": "1s"}, 400, "maxDuration"),
    ({"spanKind": "sideways"}, 400, "span kind"),
    ({"lookback": "-1h"}, 400, "lookback"),
    ({"start": 10, "end": 5}, 400, "end"),
    ({"limit": 0}, 422, "limit"),
])
def test_search_rejects_bad_parameters(client: TestClient, params: dict, status: int, fragment: str) -> None:
    r = client.get(V1 + "/traces", params=params)
    assert r.status_code == status
    assert fragment in json.dumps(r.json()["detail"])


# --- one trace --------------------------------------------------------------------------------


def test_trace_view_is_columnar_and_consistent(client: TestClient) -> None:
    doc = get(client, f"/traces/{T1.hex()}")
    models.TraceView.model_validate(doc)
    cols = doc["spans"]
    n = doc["spanCount"]
    assert n == 7 and all(len(v) == n for v in cols.values())
    assert doc["startNs"] == BASE_NS and doc["durationNs"] == 100 * MS and doc["depth"] == 4
    # Depth-first rows: every parent comes before its children.
    assert cols["parent"][0] == -1 and all(0 <= p < i for i, p in enumerate(cols["parent"]) if i)
    names = [doc["names"][k] for k in cols["name"]]
    assert names == ["GET /checkout", "call cart", "GET /cart", "audit", "call pay", "charge", "SELECT"]
    assert [doc["services"][k] for k in cols["service"]] == ["front", "front", "cart", "front", "front", "pay", "pay"]
    assert cols["start"][:3] == [0, 10 * MS, 12 * MS]
    # Self time: charge lasts 46 ms and its SELECT covers 10 of them.
    charge = names.index("charge")
    assert cols["self"][charge] == 36 * MS and cols["status"][charge] == 2
    # The exception event sits on the charge row, 67 ms after the trace start.
    ev = doc["events"]
    assert ev["span"] == [charge] and ev["time"] == [67 * MS] and ev["error"] == [1]
    assert doc["names"][ev["name"][0]] == "exception"
    by_op = {(g["service"], g["operation"]): g for g in doc["byOperation"]}
    assert by_op[("pay", "charge")]["errors"] == 1 and by_op[("pay", "charge")]["selfNs"] == 36 * MS


def test_trace_view_critical_path_matches_analysis(client: TestClient) -> None:
    doc = get(client, f"/traces/{T1.hex()}")
    analysis = get(client, f"/traces/{T1.hex()}/analysis")
    models.TraceAnalysisResult.model_validate(analysis)
    on_path = {s["spanId"] for s in analysis["spans"] if s["onCriticalPath"]}
    view_path = {sid_ for sid_, cp in zip(doc["spans"]["spanId"], doc["spans"]["criticalPath"]) if cp > 0}
    assert on_path == view_path
    # Everything but the audit, which runs in parallel with the cart call and finishes first.
    assert on_path == {sid(i).hex() for i in (1, 2, 3, 4, 5, 6)}
    shares = sum(s["criticalPathShare"] for s in analysis["spans"])
    assert shares == pytest.approx(1.0)
    sections = doc["criticalPath"]
    assert len(sections["span"]) == len(sections["start"]) == len(sections["end"]) > 0
    total = sum(e - s for s, e in zip(sections["start"], sections["end"]))
    assert total == doc["durationNs"]


def test_analysis_agrees_with_the_analysis_module(client: TestClient) -> None:
    svc = client.app.state.query_service
    expected = analyze_trace(svc.get_trace(T2).spans)
    doc = get(client, f"/traces/{T2.hex()}/analysis")
    by_id = {s["spanId"]: s for s in doc["spans"]}
    for i, s in enumerate(svc.get_trace(T2).spans):
        got = by_id[s.span_id.hex()]
        assert got["selfTimeNs"] == expected.self_ns[i]
        assert got["criticalPathNs"] == expected.critical_path.time_by_span.get(i, 0)
    assert doc["depth"] == expected.depth and doc["services"] == expected.services
    assert [g["service"] for g in doc["byService"]] == [g.service for g in expected.by_service]


def test_unknown_and_malformed_trace_ids(client: TestClient) -> None:
    assert client.get(f"{V1}/traces/{MISSING.hex()}").status_code == 404
    assert client.get(f"{V1}/traces/{MISSING.hex()}/analysis").status_code == 404
    r = client.get(f"{V1}/traces/not-a-trace-id")
    assert r.status_code == 400 and "trace id" in r.json()["detail"]


def test_span_detail(client: TestClient) -> None:
    d = get(client, f"/traces/{T1.hex()}/spans/{sid(5).hex()}")
    models.SpanDetail.model_validate(d)
    assert (d["service"], d["operation"], d["kind"], d["statusCode"], d["statusMessage"]) == (
        "pay", "charge", "server", "error", "card declined")
    assert d["parentSpanId"] == sid(4).hex() and d["depth"] == 2 and d["childCount"] == 1
    assert d["startOffsetNs"] == 47 * MS and d["durationNs"] == 46 * MS and d["selfTimeNs"] == 36 * MS
    assert {"key": "payment.provider", "type": "string", "value": "acme"} in d["attributes"]
    assert {"key": "service.name", "type": "string", "value": "pay"} in d["resource"]["attributes"]
    assert d["scope"]["name"] == "test-scope"
    (event,) = d["events"]
    assert event["name"] == "exception" and event["offsetNs"] == 20 * MS
    assert event["attributes"] == [{"key": "exception.type", "type": "string", "value": "Declined"}]
    cart = get(client, f"/traces/{T1.hex()}/spans/{sid(3).hex()}")
    assert {"key": "items", "type": "int", "value": "3"} in cart["attributes"]


def test_span_links_say_whether_the_linked_trace_is_stored(client: TestClient) -> None:
    d = get(client, f"/traces/{T2.hex()}/spans/{sid(5).hex()}")
    assert [(link["traceId"], link["stored"]) for link in d["links"]] == [(T1.hex(), True), (MISSING.hex(), False)]


def test_unknown_span_is_404(client: TestClient) -> None:
    assert client.get(f"{V1}/traces/{T1.hex()}/spans/{sid(99).hex()}").status_code == 404
    assert client.get(f"{V1}/traces/{T1.hex()}/spans/{sid(1).hex()}", params={"occurrence": 1}).status_code == 404


@pytest.mark.parametrize("q, expected", [
    ("acme", [5]),
    ("user.tier=gold", [3]),
    ("PAY", [4, 5, 6]),
    ("pay select", [6]),
    ("declined", [5]),
    ("nothing-like-this", []),
])
def test_search_inside_a_trace(client: TestClient, q: str, expected: list[int]) -> None:
    doc = get(client, f"/traces/{T1.hex()}/search", q=q)
    assert doc["spanIds"] == [sid(i).hex() for i in expected]


def test_export_otlp_and_jaeger(client: TestClient) -> None:
    r = client.get(f"{V1}/traces/{T1.hex()}/export", params={"format": "otlp"})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="trace-{T1.hex()}.otlp.json"'
    otlp = r.json()
    spans = [s for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == 7 and {s["traceId"] for s in spans} == {T1.hex()}
    r = client.get(f"{V1}/traces/{T1.hex()}/export", params={"format": "jaeger"})
    assert r.status_code == 200 and "jaeger.json" in r.headers["content-disposition"]
    (trace,) = r.json()["data"]
    assert len(trace["spans"]) == 7 and int(trace["traceID"], 16) == int.from_bytes(T1, "big")
    assert client.get(f"{V1}/traces/{T1.hex()}/export", params={"format": "zipkin"}).status_code == 422


def test_large_responses_are_gzipped_when_accepted() -> None:
    store = MemoryStore()
    b = BatchBuilder()
    for i in range(2000):
        b.span(T1, sid(i + 1), sid(1) if i else None, name=f"op-{i % 7}", start_ns=BASE_NS + i * MS, service="big")
    store.write_spans(b.build())
    with TestClient(create_app(load_config(environ={}), store)) as c:
        r = c.get(f"{V1}/traces/{T1.hex()}", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip"
        assert int(r.headers["content-length"]) < len(r.content) / 3
        assert r.json()["spanCount"] == 2000  # httpx decompressed it
        plain = c.get(f"{V1}/traces/{T1.hex()}", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == r.json()
    store.close()


# --- compare ----------------------------------------------------------------------------------


def test_compare_two_traces(client: TestClient) -> None:
    doc = get(client, "/compare", a=T1.hex(), b=T2.hex())
    models.CompareResult.model_validate(doc)
    assert doc["matched"] == 7 and doc["onlyInA"] == []
    (only_b,) = doc["onlyInB"]
    assert [step["operation"] for step in only_b["path"]] == ["GET /checkout", "call cart", "GET /cart", "cache GET"]
    # The charge lost 30 ms of self time: the largest impact, first.
    first = doc["changed"][0]
    assert (first["service"], first["operation"]) == ("pay", "charge")
    assert first["selfDeltaNs"] == -30 * MS and first["impactNs"] == 30 * MS
    impacts = [c["impactNs"] for c in doc["changed"]]
    assert impacts == sorted(impacts, reverse=True)
    rows = doc["rows"]
    assert len(rows) == 8 and not doc["rowsTruncated"]
    cache = next(r for r in rows if r["operation"] == "cache GET")
    assert cache["a"] is None and cache["b"]["spanId"] == sid(7).hex() and cache["depth"] == 3
    assert [r["operation"] for r in rows][:4] == ["GET /checkout", "call cart", "GET /cart", "cache GET"]


def test_compare_unknown_trace_is_404(client: TestClient) -> None:
    assert client.get(V1 + "/compare", params={"a": T1.hex(), "b": MISSING.hex()}).status_code == 404


# --- across traces ----------------------------------------------------------------------------


def test_latency_of_a_service(client: TestClient) -> None:
    doc = get(client, "/latency", service="api", step="10s", **RANGE)
    models.LatencyResult.model_validate(doc)
    s = doc["summary"]
    assert s["count"] == 100 and s["errorCount"] == 10 and s["errorRate"] == pytest.approx(0.1)
    assert (s["p50Ns"], s["p90Ns"], s["p95Ns"], s["p99Ns"], s["maxNs"]) == (50 * MS, 90 * MS, 95 * MS, 99 * MS, 100 * MS)
    assert s["ratePerSecond"] == pytest.approx(100 / 601)
    assert doc["tracesScanned"] == 100 and not doc["truncated"]
    hist = doc["histogram"]
    assert sum(b["count"] for b in hist) == 100 and sum(b["errorCount"] for b in hist) == 10
    for b in hist:
        assert b["lowerNs"] < b["upperNs"] and len(b["exampleTraceIds"]) == min(b["count"], 3)
    points = [p for p in doc["series"] if p["count"]]
    assert len(points) == 10 and all(p["count"] == 10 for p in points)
    assert doc["stepNs"] == 10 * SEC and points[0]["ratePerSecond"] == pytest.approx(1.0)
    # Each step's examples are its slowest traces.
    assert points[0]["exampleTraceIds"][0] == tid(0x1000 + 9).hex()


def test_latency_entry_spans_and_operations(client: TestClient) -> None:
    # Entry spans of pay: only "charge" (SELECT's parent is pay itself).
    doc = get(client, "/latency", service="pay", entryOnly=True, **RANGE)
    assert doc["summary"]["count"] == 2 and doc["summary"]["maxNs"] == 46 * MS
    # Every entry span of the range, not a sample of traces.
    few = get(client, "/latency", service="pay", entryOnly=True, maxTraces=1, **RANGE)
    assert few["summary"] == doc["summary"] and not few["truncated"] and few["tracesScanned"] == 2
    assert get(client, "/latency", service="pay", **RANGE)["summary"]["count"] == 4
    assert get(client, "/latency", service="pay", operation="SELECT", **RANGE)["summary"]["count"] == 2


def test_latency_reports_truncation(client: TestClient) -> None:
    doc = get(client, "/latency", service="api", maxSpans=20, **RANGE)
    assert doc["truncated"] and doc["tracesScanned"] == 20 and doc["summary"]["count"] == 20
    # The 20 most recent requests started 80 s after the first api request.
    assert doc["coveredStartNs"] == BASE_NS + 280 * SEC


def test_latency_rejects_too_many_steps(client: TestClient) -> None:
    r = client.get(V1 + "/latency", params={"service": "api", "step": "1ms", **RANGE})
    assert r.status_code == 400 and "step" in r.json()["detail"]


def test_operation_stats(client: TestClient) -> None:
    doc = get(client, "/services/front/operations/stats", **RANGE)
    models.OperationStatsResult.model_validate(doc)
    ops = {(o["name"], o["spanKind"]): o for o in doc["operations"]}
    assert set(ops) == {("GET /checkout", "server"), ("call cart", "client"), ("call pay", "client"), ("audit", "internal")}
    root = ops[("GET /checkout", "server")]
    assert root["count"] == 2 and root["p50Ns"] == 100 * MS and root["totalNs"] == 200 * MS
    assert doc["operations"][0]["name"] == "GET /checkout"  # most total time first


def test_attribute_differences_of_slow_and_failed_spans(client: TestClient) -> None:
    slow = get(client, "/attributes/differences", service="api", threshold="91ms", **RANGE)
    models.AttributeDifferencesResult.model_validate(slow)
    assert slow["selectedCount"] == 10 and slow["restCount"] == 90 and slow["thresholdNs"] == 91 * MS
    top = slow["differences"][0]
    assert (top["key"], top["value"], top["selectedFrequency"], top["restFrequency"]) == ("region", "eu", 1.0, 0.0)
    assert all(d["key"] != "request.id" for d in slow["differences"])  # unique per span: no signal
    default = get(client, "/attributes/differences", service="api", **RANGE)
    assert default["thresholdNs"] == 95 * MS and default["selectedCount"] == 6
    errors = get(client, "/attributes/differences", service="pay", errors=True, **RANGE)
    assert errors["selection"] == "errors" and errors["selectedCount"] == 1


def test_dependencies(client: TestClient) -> None:
    doc = get(client, "/dependencies", **RANGE)
    models.DependencyGraph.model_validate(doc)
    edges = {(e["parent"], e["child"]): e for e in doc["edges"]}
    assert set(edges) == {("front", "cart"), ("front", "pay")}
    assert edges[("front", "pay")]["callCount"] == 2 and edges[("front", "pay")]["errorRate"] == pytest.approx(0.5)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert nodes["front"]["callsOut"] == 4 and nodes["pay"]["errorsIn"] == 1


# --- schema and UI mount ----------------------------------------------------------------------


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    expected = {V1 + p for p in (
        "/services", "/services/{service}/operations", "/services/{service}/operations/stats", "/traces",
        "/traces/{trace_id}", "/traces/{trace_id}/analysis", "/traces/{trace_id}/spans/{span_id}",
        "/traces/{trace_id}/search", "/traces/{trace_id}/export", "/compare", "/latency", "/attributes/differences",
        "/dependencies")}
    ours = {p: ops for p, ops in spec["paths"].items() if p in expected}
    assert set(ours) == expected
    for path, ops in ours.items():
        op = ops["get"]
        assert op.get("summary"), path
        if not path.endswith("/export"):
            assert "$ref" in json.dumps(op["responses"]["200"]), path
        for param in op.get("parameters", []):
            if param["in"] == "query":
                assert param.get("description") or param["schema"].get("description") or param["name"] in {
                    "limit", "step"}, (path, param["name"])


@pytest.mark.parametrize("path", ["/", "/search", "/trace/abc123", "/compare", "/map", "/service/front",
                                  "/service/a%2Fb"])
def test_ui_pages_serve_the_app(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in r.text


def test_ui_assets_are_served_and_do_not_shadow_the_apis(client: TestClient) -> None:
    r = client.get("/static/js/main.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert r.headers["cache-control"] == "no-cache"
    assert client.get("/static/js/nope.js").status_code == 404
    assert client.get("/static/%2e%2e/mount.py").status_code == 404
    again = client.get("/static/js/main.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/services").json()["data"] == ["api", "cart", "front", "pay"]
    assert client.get("/api/v3/services").json() == {"services": ["api", "cart", "front", "pay"]}
    assert client.get("/nowhere").status_code == 404


def test_ui_assets_reference_nothing_outside_the_server() -> None:
    from spanlake.ui.mount import STATIC_DIR, UI_DIR

    files = [UI_DIR / "index.html", *STATIC_DIR.rglob("*")]
    for f in files:
        if f.suffix in (".js", ".css", ".html", ".svg"):
            text = f.read_text()
            for marker in ("http://", "https://", "//cdn", "@import", "fonts.googleapis"):
                if marker in text:
                    # Only the SVG namespace URI is allowed.
                    assert marker == "http://" and text.count("http://") == text.count("http://www.w3.org/2000/svg"), f


def test_index_preloads_every_module() -> None:
    """index.html lists every module for parallel loading (a new module must be added there)."""
    from spanlake.ui.mount import INDEX_HTML, STATIC_DIR

    html = INDEX_HTML.read_text()
    for f in STATIC_DIR.rglob("*.js"):
        url = "/static/" + f.relative_to(STATIC_DIR).as_posix()
        if url != "/static/js/main.js":
            assert f'<link rel="modulepreload" href="{url}">' in html, url
