"""The requests the real Jaeger UI and Grafana's Jaeger data source send, replayed against a
real server, with their responses checked the way those clients read them.

This machine cannot run either client (no route to GitHub, Docker Hub or Grafana's
downloads, and neither ships a built bundle on npm), so the requests below are transcribed
from their sources:

- jaeger-ui ``packages/jaeger-ui/src/api/jaeger.ts`` (legacy ``/api``: services, operations,
  ``/api/traces`` search as UIs up to v2.19 send it, trace by id, dependencies, archive,
  transform, the Monitor tab's metrics) and ``src/api/v3/client.ts`` with the Zod schemas of
  ``src/api/v3/schemas.ts`` (v2.20+: ``/api/v3/services``, ``/api/v3/operations``,
  ``/api/v3/trace-summaries``, ``/api/v3/traces/{id}``). ``_check_*`` below port those
  schemas' refinements: hex ids that are not all zeros, decimal-string nanoseconds, an
  AnyValue with exactly one value field, required ``scopeSpans``/``spans`` arrays.
- grafana ``public/app/plugins/datasource/jaeger/datasource.ts`` and ``responseTransform.ts``:
  ``testDatasource`` reads ``/api/services``; search sends ``lookback=custom`` with
  microsecond ``start``/``end`` and ``tags`` as JSON converted from logfmt; a trace is
  ``data[0]`` of ``/api/traces/{id}``, whose spans must carry ``logs`` arrays and a
  ``processID`` present in ``processes``.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timezone

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

TRACE_ID_HEX = re.compile(r"^(?!0+$)[0-9a-f]{32}$", re.I)
SPAN_ID_HEX = re.compile(r"^(?!0+$)[0-9a-f]{16}$", re.I)
ANY_VALUE_KEYS = ("stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue")


@pytest.fixture(scope="module")
def sent(shared_server) -> dict:
    """One SDK trace of 4 spans over OTLP/HTTP: jc-web -> jc-orders (failing) -> a PostgreSQL client
    span; the root links to a separate one-span trace."""
    providers = {n: TracerProvider(resource=Resource.create({"service.name": n, "host.name": f"{n}-1"}))
                 for n in ("jc-web", "jc-orders")}
    for p in providers.values():
        p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=shared_server.otlp_http + "/v1/traces")))
    web, orders = providers["jc-web"].get_tracer("web", "1.2"), providers["jc-orders"].get_tracer("orders")
    with web.start_as_current_span("earlier") as earlier:
        pass
    link = Link(earlier.get_span_context(), {"link.kind": "retry-of"})
    with web.start_as_current_span(
        "GET /jc/orders", kind=SpanKind.SERVER, links=[link],
        attributes={"http.route": "/jc/orders", "http.status_code": 500, "ratio": 0.25, "cached": False,
                    "tags": ["a", "b"]},
    ) as root:
        root.add_event("auth.checked", {"user": "u-1", "attempt": 2})
        with web.start_as_current_span("call orders", kind=SpanKind.CLIENT) as client:
            server = orders.start_span("ListOrders", kind=SpanKind.SERVER, context=set_span_in_context(client))
            db = orders.start_span("SELECT orders", kind=SpanKind.CLIENT, context=set_span_in_context(server),
                                   attributes={"db.system": "postgresql", "db.name": "shop"})
            time.sleep(0.003)
            db.end()
            server.set_status(Status(StatusCode.ERROR, "no stock"))
            server.end()
    for p in providers.values():
        p.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    base = shared_server.http_url
    deadline = time.time() + 20
    while time.time() < deadline:
        r = httpx.get(f"{base}/api/traces/{trace_id}")
        if r.status_code == 200 and len(r.json()["data"][0]["spans"]) == 4:
            break
        time.sleep(0.2)
    return {"base": base, "trace_id": trace_id, "earlier": format(earlier.get_span_context().trace_id, "032x"),
            "start_us": root.start_time // 1000}


def _now_us() -> int:
    return time.time_ns() // 1000


# -- Jaeger UI, legacy /api (src/api/jaeger.ts) -------------------------------------------------


def _check_envelope(doc: dict) -> list:
    assert set(doc) >= {"data", "total", "limit", "offset", "errors"}, doc.keys()
    assert doc["errors"] is None
    return doc["data"]


def _check_jaeger_trace(trace: dict) -> None:
    """What the Jaeger UI's transformTraceData and Grafana's createTraceFrame read."""
    assert TRACE_ID_HEX.match(trace["traceID"])
    processes = trace["processes"]
    for proc in processes.values():
        assert isinstance(proc["serviceName"], str) and proc["serviceName"]
        assert all({"key", "type", "value"} <= set(t) for t in proc["tags"])
    for span in trace["spans"]:
        assert span["traceID"] == trace["traceID"] and SPAN_ID_HEX.match(span["spanID"])
        assert isinstance(span["operationName"], str)
        assert isinstance(span["startTime"], int) and isinstance(span["duration"], int)
        assert span["processID"] in processes
        assert isinstance(span["logs"], list) and isinstance(span["references"], list)
        for ref in span["references"]:
            assert ref["refType"] in ("CHILD_OF", "FOLLOWS_FROM")
            assert TRACE_ID_HEX.match(ref["traceID"]) and SPAN_ID_HEX.match(ref["spanID"])
        for tag in span["tags"]:
            assert tag["type"] in ("string", "bool", "int64", "float64", "binary")
        for log in span["logs"]:
            assert isinstance(log["timestamp"], int) and isinstance(log["fields"], list)
        assert span["warnings"] is None or isinstance(span["warnings"], list)


def test_jaeger_ui_legacy_search_and_trace_page(sent: dict) -> None:
    base, trace_id = sent["base"], sent["trace_id"]
    services = _check_envelope(httpx.get(f"{base}/api/services").json())
    assert {"jc-web", "jc-orders"} <= set(services)
    ops = _check_envelope(httpx.get(f"{base}/api/services/{'jc-web'}/operations").json())
    assert {"GET /jc/orders", "call orders", "earlier"} <= set(ops)
    server_ops = _check_envelope(httpx.get(f"{base}/api/operations", params={"service": "jc-orders",
                                                                            "spanKind": "server"}).json())
    assert server_ops == [{"name": "ListOrders", "spanKind": "server"}]

    # SearchForm's submit, as query-string.stringify writes it (keys sorted; an empty duration
    # field is sent as an empty value).
    end = _now_us()
    query = (f"end={end}&limit=20&lookback=1h&maxDuration=&minDuration=&operation=GET%20%2Fjc%2Forders"
             f"&service=jc-web&start={end - 3_600_000_000}&tags=" + httpx.QueryParams({"t": json.dumps(
                 {"http.status_code": "500"})})["t"].replace('"', "%22"))
    found = _check_envelope(httpx.get(f"{base}/api/traces?{query}").json())
    assert [t["traceID"] for t in found] == [trace_id]
    _check_jaeger_trace(found[0])

    (trace,) = _check_envelope(httpx.get(f"{base}/api/traces/{trace_id}").json())
    _check_jaeger_trace(trace)
    spans = {s["operationName"]: s for s in trace["spans"]}
    root = spans["GET /jc/orders"]
    assert {"refType": "FOLLOWS_FROM", "traceID": sent["earlier"]} == {
        k: root["references"][0][k] for k in ("refType", "traceID")}
    assert [f["value"] for f in root["logs"][0]["fields"] if f["key"] == "event"] == ["auth.checked"]
    assert {"key": "error", "type": "bool", "value": True} in spans["ListOrders"]["tags"]
    assert spans["ListOrders"]["references"] == [
        {"refType": "CHILD_OF", "traceID": trace_id, "spanID": spans["call orders"]["spanID"]}]

    missing = httpx.get(f"{base}/api/traces/{'ab' * 16}")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == 404  # getMessageFromError reads code and msg
    assert missing.json()["errors"][0]["msg"]


def test_jaeger_ui_legacy_side_pages(sent: dict) -> None:
    base, trace_id = sent["base"], sent["trace_id"]
    # System Architecture: fetchDependencies(endTs = now in ms, lookback = one week in ms).
    deps = _check_envelope(httpx.get(f"{base}/api/dependencies", params={
        "endTs": time.time_ns() // 1_000_000, "lookback": 7 * 86_400_000}).json())
    edges = {(d["parent"], d["child"]): d["callCount"] for d in deps}
    assert edges.get(("jc-web", "jc-orders")) == 1

    # The trace page's Archive button, then the archived trace still reads back.
    assert httpx.post(f"{base}/api/archive/{trace_id}").status_code == 200
    assert httpx.get(f"{base}/api/traces/{trace_id}").status_code == 200

    # Upload of an OTLP JSON file: transformOTLP posts it as-is.
    otlp = httpx.get(f"{base}/api/v3/traces/{trace_id}").json()["result"]
    (converted,) = _check_envelope(httpx.post(f"{base}/api/transform", content=json.dumps(otlp)).json())
    _check_jaeger_trace(converted)
    assert len(converted["spans"]) == 4

    # Monitor tab: fetchMetrics('latencies', ['jc-web'], {...}) builds this query string.
    q = (f"service=jc-web&endTs={time.time_ns() // 1_000_000}&lookback=3600000&quantile=0.95"
         f"&ratePerSecond=600000&spanKind=server&step=60000")
    for metric in ("latencies", "calls", "errors"):
        r = httpx.get(f"{base}/api/metrics/{metric}?{q}")
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["name"].startswith("service_") and isinstance(doc["metrics"], list)
        for series in doc["metrics"]:
            assert {"name": "service_name", "value": "jc-web"} in series["labels"]
            assert all({"gaugeValue", "timestamp"} <= set(p) for p in series["metricPoints"])


# -- Jaeger UI v2.20+, /api/v3 (src/api/v3/client.ts + schemas.ts) --------------------------------


def _check_any_value(value: dict) -> None:
    present = [k for k in ANY_VALUE_KEYS if k in value]
    assert len(present) == 1, f"AnyValue must have exactly one value field, got {present}"
    if "intValue" in value:
        assert re.fullmatch(r"-?\d{1,20}", value["intValue"]) and -(2**63) <= int(value["intValue"]) < 2**63
    if "doubleValue" in value:
        assert isinstance(value["doubleValue"], (int, float))
    if "boolValue" in value:
        assert isinstance(value["boolValue"], bool)
    if "stringValue" in value:
        assert isinstance(value["stringValue"], str)
    if "bytesValue" in value:
        base64.b64decode(value["bytesValue"], validate=True)
    for v in value.get("arrayValue", {}).get("values", []):
        _check_any_value(v)
    _check_attributes(value.get("kvlistValue", {}).get("values", []))


def _check_attributes(attrs: list) -> None:
    for kv in attrs:
        assert isinstance(kv["key"], str)
        _check_any_value(kv["value"])


def _nanos(text: str) -> int:
    assert isinstance(text, str) and re.fullmatch(r"\d+", text), text
    assert int(text) < 2**64
    return int(text)


def _check_traces_data(doc: dict) -> list[dict]:
    """GetTraceResponseSchema: {result: TracesData} with the refined OTLP types."""
    spans = []
    for rs in doc["result"].get("resourceSpans", []):
        _check_attributes(rs.get("resource", {}).get("attributes", []))
        assert isinstance(rs["scopeSpans"], list)
        for ss in rs["scopeSpans"]:
            _check_attributes(ss.get("scope", {}).get("attributes", []))
            assert isinstance(ss["spans"], list)
            for span in ss["spans"]:
                assert TRACE_ID_HEX.match(span["traceId"]) and SPAN_ID_HEX.match(span["spanId"])
                if "parentSpanId" in span:
                    assert SPAN_ID_HEX.match(span["parentSpanId"])
                assert isinstance(span.get("kind", 0), int) and span.get("kind", 0) >= 0
                assert _nanos(span["startTimeUnixNano"]) <= _nanos(span["endTimeUnixNano"])
                _check_attributes(span.get("attributes", []))
                for ev in span.get("events", []):
                    _nanos(ev["timeUnixNano"])
                    _check_attributes(ev.get("attributes", []))
                for link in span.get("links", []):
                    assert TRACE_ID_HEX.match(link["traceId"]) and SPAN_ID_HEX.match(link["spanId"])
                    _check_attributes(link.get("attributes", []))
                status = span.get("status", {})
                assert isinstance(status.get("code", 0), int) and isinstance(status.get("message", ""), str)
                spans.append(span)
    return spans


def _iso_ms(us: int) -> str:
    """JavaScript's Date.toISOString(): millisecond precision, 'Z'."""
    dt = datetime.fromtimestamp(us / 1e6, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def test_jaeger_ui_v3_search_and_trace(sent: dict) -> None:
    base, trace_id = sent["base"], sent["trace_id"]
    services = httpx.get(f"{base}/api/v3/services").json()
    assert isinstance(services["services"], list) and {"jc-web", "jc-orders"} <= set(services["services"])
    ops = httpx.get(f"{base}/api/v3/operations", params={"service": "jc-orders"}).json()["operations"]
    assert {"name": "ListOrders", "spanKind": "server"} in ops
    assert all(isinstance(o["name"], str) and isinstance(o["spanKind"], str) for o in ops)

    # fetchTraceSummaries: start/end from the URL's microseconds, as ISO strings.
    end = _now_us()
    params = {"query.service_name": "jc-web", "query.span_name": "GET /jc/orders",
              "query.start_time_min": _iso_ms(end - 3_600_000_000), "query.start_time_max": _iso_ms(end + 1000),
              "query.num_traces": "20", "query.duration_min": "1ms",
              "query.attributes": json.dumps({"http.route": "/jc/orders"})}
    r = httpx.get(f"{base}/api/v3/trace-summaries", params=params)
    assert r.status_code == 200, r.text
    (summary,) = r.json()["summaries"]
    assert TRACE_ID_HEX.match(summary["traceId"]) and summary["traceId"] == trace_id
    start, finish = _nanos(summary["minStartTimeUnixNano"]), _nanos(summary["maxEndTimeUnixNano"])
    assert start // 1000 == sent["start_us"] and finish > start
    assert summary["rootServiceName"] == "jc-web" and summary["rootOperationName"] == "GET /jc/orders"
    assert summary["spanCount"] == 4 and summary["errorSpanCount"] == 1
    assert {s["name"] for s in summary["services"]} == {"jc-web", "jc-orders"}
    assert all(isinstance(s.get("spanCount", 0), int) and s.get("spanCount", 0) >= 0 for s in summary["services"])
    # The operation filter really filters: another span name finds nothing (Jaeger's 404 body).
    nothing = httpx.get(f"{base}/api/v3/trace-summaries", params={**params, "query.span_name": "no such op"})
    assert nothing.status_code == 404 and nothing.json()["error"]["httpCode"] == 404

    spans = _check_traces_data(httpx.get(f"{base}/api/v3/traces/{trace_id}").json())
    assert len(spans) == 4
    root = next(s for s in spans if s["name"] == "GET /jc/orders")
    attrs = {kv["key"]: kv["value"] for kv in root["attributes"]}
    assert attrs["http.status_code"] == {"intValue": "500"} and attrs["ratio"] == {"doubleValue": 0.25}
    assert attrs["cached"] == {"boolValue": False}
    assert attrs["tags"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}
    assert root["links"][0]["traceId"] == sent["earlier"]


# -- Grafana's Jaeger data source (datasource.ts, responseTransform.ts) ------------------------------


def test_grafana_jaeger_data_source(sent: dict) -> None:
    base, trace_id = sent["base"], sent["trace_id"]
    # testDatasource: success when data is a non-empty list.
    assert _check_envelope(httpx.get(f"{base}/api/services").json())

    # Search: pick(service, operation, tags, minDuration, maxDuration, limit), tags converted from
    # logfmt ('http.route="/jc/orders" error=true') to JSON, plus getTimeRange() and lookback=custom.
    now = _now_us()
    r = httpx.get(f"{base}/api/traces", params={
        "service": "jc-orders", "tags": json.dumps({"error": "true"}), "minDuration": "1ms", "limit": "20",
        "start": now - 3_600_000_000, "end": now, "lookback": "custom"})
    found = _check_envelope(r.json())
    assert [t["traceID"] for t in found] == [trace_id]
    for t in found:  # createTableFrame -> transformTraceData
        _check_jaeger_trace(t)

    # Trace by id: data[0] -> createTraceFrame; parentSpanID from the CHILD_OF reference.
    trace = httpx.get(f"{base}/api/traces/{trace_id}").json()["data"][0]
    _check_jaeger_trace(trace)
    by_id = {s["spanID"]: s for s in trace["spans"]}
    db = next(s for s in trace["spans"] if s["operationName"] == "SELECT orders")
    parent = next(r["spanID"] for r in db["references"] if r["refType"] == "CHILD_OF")
    assert by_id[parent]["operationName"] == "ListOrders"
    assert trace["processes"][db["processID"]]["serviceName"] == "jc-orders"
    # Grafana's "trace not found" path: data missing or empty, not an error page.
    missing = httpx.get(f"{base}/api/traces/{'cd' * 16}")
    assert missing.status_code == 404 and missing.json()["data"] in (None, [])
