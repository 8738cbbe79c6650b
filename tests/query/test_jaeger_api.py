"""Jaeger's HTTP APIs (/api and /api/v3) over an in-process app: golden files, search, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from spanlake.collector.decode_traces import decode_export_trace_request
from spanlake.collector.otlp_json import parse_traces_json
from spanlake.config import load_config
from spanlake.query.api.app import create_app
from spanlake.storage.memory import MemoryStore

GOLDEN = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "jaeger-api"
T0 = 1_700_000_000_000_000_000  # ns
US = 1000


def load_otlp_json(store, doc: dict) -> None:
    parsed = parse_traces_json(json.dumps(doc).encode())
    data = parsed if isinstance(parsed, (bytes, bytearray)) else parsed.SerializeToString()
    result = decode_export_trace_request(data)
    assert result.rejected_spans == 0, result.error_message
    store.write_spans(result.batch).result()


def span(trace: str, span_id: str, name: str, start: int, dur: int, parent: str = "", kind: int = 2,
         attrs: dict | None = None, status: int = 0, events: list | None = None) -> dict:
    doc = {"traceId": trace, "spanId": span_id, "name": name, "kind": kind,
           "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + dur),
           "attributes": [{"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": str(v)}}
                          for k, v in (attrs or {}).items()],
           "status": {"code": status} if status else {}}
    if parent:
        doc["parentSpanId"] = parent
    if events:
        doc["events"] = events
    return doc


def resource_spans(service: str, spans: list[dict], resource: dict | None = None, scope: str = "lib") -> dict:
    attrs = [{"key": "service.name", "value": {"stringValue": service}}]
    attrs += [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {}).items()]
    return {"resource": {"attributes": attrs}, "scopeSpans": [{"scope": {"name": scope, "version": "1.0"}, "spans": spans}]}


TRACE_A = "aa" * 16
TRACE_B = "bb" * 16
TRACE_C = "cc" * 16


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    store = MemoryStore()
    load_otlp_json(store, {"resourceSpans": [
        resource_spans("frontend", [
            span(TRACE_A, "a1" * 8, "GET /cart", T0, 50_000_000, attrs={"http.route": "/cart", "http.response.status_code": 200}),
            span(TRACE_A, "a2" * 8, "call cart", T0 + 1_000_000, 40_000_000, parent="a1" * 8, kind=3),
        ], resource={"host.name": "web-1"}),
        resource_spans("cart", [
            span(TRACE_A, "a3" * 8, "GetCart", T0 + 2_000_000, 30_000_000, parent="a2" * 8,
                 attrs={"customer.tier": "gold"}, status=2,
                 events=[{"timeUnixNano": str(T0 + 3_000_000), "name": "exception",
                          "attributes": [{"key": "exception.type", "value": {"stringValue": "KeyError"}}]}]),
        ], resource={"k8s.namespace.name": "shop"}, scope="cart-lib"),
        resource_spans("frontend", [
            span(TRACE_B, "b1" * 8, "GET /home", T0 + 10_000_000_000, 5_000_000, attrs={"http.route": "/home"}),
        ]),
        resource_spans("frontend", [
            span(TRACE_C, "c1" * 8, "GET /cart", T0 + 20_000_000_000, 900_000_000, attrs={"http.route": "/cart"}),
        ]),
    ]})
    with TestClient(create_app(load_config(), store)) as c:
        yield c
    store.close()


def test_transform_matches_jaeger_golden_file() -> None:
    with TestClient(create_app(load_config(), MemoryStore())) as c:
        r = c.post("/api/transform", content=(GOLDEN / "fixture_otlp2jaeger-in.json").read_bytes())
    assert r.status_code == 200
    assert r.json() == json.loads((GOLDEN / "fixture_otlp2jaeger-out.json").read_text())


def test_api_v3_snapshots() -> None:
    store = MemoryStore()
    one, two = "0" * 31 + "1", "0" * 15 + "2"
    load_otlp_json(store, {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [
        {"traceId": one, "spanId": two, "name": "foobar", "kind": 2, "status": {"code": 2}}]}]}]})
    with TestClient(create_app(load_config(), store)) as c:
        r = c.get(f"/api/v3/traces/{one}")
        assert r.status_code == 200
        assert r.json() == json.loads((GOLDEN / "apiv3_snapshots_GetTrace.json").read_text())

    store = MemoryStore()
    load_otlp_json(store, {"resourceSpans": [resource_spans("foo", [span(TRACE_A, "a1" * 8, "get_users", T0, 1000)])]})
    with TestClient(create_app(load_config(), store)) as c:
        assert c.get("/api/v3/services").json() == json.loads((GOLDEN / "apiv3_snapshots_GetServices.json").read_text())
        assert c.get("/api/v3/operations", params={"service": "foo"}).json() == json.loads(
            (GOLDEN / "apiv3_snapshots_GetOperations.json").read_text())

    store = MemoryStore()
    load_otlp_json(store, {"resourceSpans": [resource_spans("frontend", [
        span(one, "0" * 15 + "1", "HTTP GET /", 1_000_000_000_000, 1_000_000_000, status=2),
        span(one, "0" * 15 + "2", "child", 1_000_100_000_000, 100_000_000, parent="0" * 15 + "1"),
    ])]})
    with TestClient(create_app(load_config(), store)) as c:
        r = c.get("/api/v3/trace-summaries", params={"query.serviceName": "frontend",
                                                     "query.startTimeMin": "1970-01-01T00:00:00Z",
                                                     "query.startTimeMax": "2030-01-01T00:00:00Z"})
        assert r.status_code == 200
        assert r.json() == json.loads((GOLDEN / "apiv3_snapshots_FindTraceSummaries.json").read_text())


def _ids(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [t["traceID"] for t in r.json()["data"]]


def _search(client, **params):
    params.setdefault("start", str((T0 - 10**9) // US))
    params.setdefault("end", str((T0 + 100 * 10**9) // US))
    return client.get("/api/traces", params=params)


@pytest.mark.parametrize("params,expected", [
    ({"service": "frontend"}, [TRACE_C, TRACE_B, TRACE_A]),
    ({"service": "frontend", "limit": "1"}, [TRACE_C]),
    ({"service": "frontend", "operation": "GET /cart"}, [TRACE_C, TRACE_A]),
    ({"service": "frontend", "operation": "GetCart"}, []),
    ({"service": "cart", "tags": '{"customer.tier":"gold"}'}, [TRACE_A]),
    ({"service": "cart", "tag": "customer.tier:silver"}, []),
    ({"service": "frontend", "tag": "http.response.status_code:200"}, [TRACE_A]),
    ({"service": "frontend", "minDuration": "100ms"}, [TRACE_C]),
    ({"service": "frontend", "maxDuration": "10ms"}, [TRACE_B]),
    ({"service": "cart", "tag": "error:true"}, [TRACE_A]),
    ({"service": "frontend", "tag": "error:true"}, []),
    ({"service": "cart", "tag": "span.kind:server"}, [TRACE_A]),
    ({"service": "frontend", "tag": "span.kind:client"}, [TRACE_A]),
    ({"service": "cart", "tag": "resource.k8s.namespace.name:shop"}, [TRACE_A]),
    ({"service": "frontend", "tag": "resource.k8s.namespace.name:shop"}, []),
    ({"service": "cart", "tag": "scope.name:cart-lib"}, [TRACE_A]),
    ({"service": "cart", "tag": "exception.type:KeyError"}, [TRACE_A]),
    ({"service": "frontend", "tag": "host.name:web-1"}, [TRACE_A]),
    # Every condition must hold on one span: the route is on the server span, the kind on the client.
    ({"service": "frontend", "tag": ["http.route:/cart", "span.kind:client"]}, []),
    ({"tag": "customer.tier:gold"}, [TRACE_A]),
])
def test_search_semantics(client, params, expected) -> None:
    assert _ids(_search(client, **params)) == expected


def test_search_returns_whole_traces_with_processes(client) -> None:
    (trace,) = _search(client, service="cart").json()["data"]
    assert len(trace["spans"]) == 3
    assert sorted(p["serviceName"] for p in trace["processes"].values()) == ["cart", "frontend"]


def test_trace_by_id_services_operations_dependencies(client) -> None:
    r = client.get(f"/api/traces/{TRACE_A}")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"data", "total", "limit", "offset", "errors"} and body["errors"] is None
    assert {s["operationName"] for s in body["data"][0]["spans"]} == {"GET /cart", "call cart", "GetCart"}
    assert client.get("/api/services").json()["data"] == ["cart", "frontend"]
    assert client.get("/api/services/frontend/operations").json()["data"] == ["GET /cart", "GET /home", "call cart"]
    ops = client.get("/api/operations", params={"service": "frontend", "spanKind": "client"}).json()["data"]
    assert ops == [{"name": "call cart", "spanKind": "client"}]
    deps = client.get("/api/dependencies", params={"endTs": str(T0 // 10**6 + 10**6), "lookback": str(10**7)}).json()
    assert deps["data"] == [{"parent": "frontend", "child": "cart", "callCount": 1}]
    pretty = client.get(f"/api/traces/{TRACE_A}", params={"prettyPrint": "true"}).text
    assert pretty.startswith("{\n    ")
    multi = client.get("/api/traces", params=[("traceID", TRACE_A), ("traceID", "dd" * 16)]).json()
    assert [t["traceID"] for t in multi["data"]] == [TRACE_A]
    assert multi["errors"] == [{"code": 404, "msg": "trace not found", "traceID": "dd" * 16}]


@pytest.mark.parametrize("path,params,status,needle", [
    ("/api/traces/" + "ee" * 16, {}, 404, "trace not found"),
    ("/api/traces/not-hex", {}, 400, "traceID"),
    ("/api/traces", {"service": "frontend", "minDuration": "fast"}, 400, "minDuration"),
    ("/api/traces", {"service": "frontend", "start": "200", "end": "100"}, 400, "end"),
    ("/api/traces", {"service": "frontend", "limit": "many"}, 400, "limit"),
    ("/api/traces", {"service": "frontend", "tags": "{bad"}, 400, "tags"),
    ("/api/operations", {}, 400, "service"),
])
def test_legacy_errors_use_jaeger_envelope(client, path, params, status, needle) -> None:
    r = client.get(path, params=params)
    assert r.status_code == status
    body = r.json()
    assert body["data"] is None and body["errors"][0]["code"] == status
    assert needle in body["errors"][0]["msg"]


def test_api_v3_search_and_errors(client) -> None:
    q = {"query.serviceName": "frontend", "query.startTimeMin": "2023-11-14T22:13:00Z",
         "query.startTimeMax": "2023-11-14T22:15:00.5Z"}
    r = client.get("/api/v3/traces", params=q)
    assert r.status_code == 200
    ids = {s["traceId"] for rs in r.json()["result"]["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
    assert ids == {TRACE_A, TRACE_B, TRACE_C}
    snake = {"query.service_name": "cart", "query.start_time_min": q["query.startTimeMin"],
             "query.start_time_max": q["query.startTimeMax"]}
    assert client.get("/api/v3/traces", params=snake).status_code == 200
    none = client.get("/api/v3/traces", params={**q, "query.serviceName": "nobody"})
    assert none.status_code == 404 and none.json()["error"]["httpCode"] == 404
    missing = client.get("/api/v3/traces", params={"query.serviceName": "frontend"})
    assert missing.status_code == 400 and "start time min" in missing.json()["error"]["message"]
    bad = client.get("/api/v3/traces", params={**q, "query.durationMin": "soon"})
    assert bad.status_code == 400 and "durationMin" in bad.json()["error"]["message"]
    assert client.get("/api/v3/traces/" + "ee" * 16).status_code == 404
