"""The log API of a real server: a search for each filter kind, paging, histogram, trace -> logs,
and a 400 naming the parameter for every malformed one. The data goes in over OTLP."""

from __future__ import annotations

import os
import time

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc

from tests.logs.otlp_logs import make_log, make_logs_request

SEC = 10**9
T = (time.time_ns() // SEC - 600) * SEC  # ten minutes ago, on a whole second
TRACE, SPAN_1, SPAN_2 = os.urandom(16), os.urandom(8), os.urandom(8)


@pytest.fixture(scope="module")
def api(shared_server) -> str:
    a = [
        make_log("User alice logged in", time_ns=T + 1 * SEC, severity=9, severity_text="INFO", trace_id=TRACE,
                 span_id=SPAN_1, attrs={"label": "a1", "user": "alice", "tenant": "t1"}),
        make_log("Disk 91% full", time_ns=T + 2 * SEC, severity=13, severity_text="WARN", trace_id=TRACE,
                 span_id=SPAN_2, attrs={"label": "a2", "tenant": "t1"}),
        make_log("payment FAILED for alice", time_ns=T + 3 * SEC, severity=17, trace_id=TRACE,
                 attrs={"label": "a3", "tenant": "t2"}),
        make_log({"order": 7, "state": "lost"}, time_ns=T + 4 * SEC, severity=21, event_name="order.lost",
                 attrs={"label": "a4"}),
    ]
    b = [make_log(f"tick {i}", time_ns=T + (10 + i) * SEC, severity=5, attrs={"label": f"b{i}"}) for i in range(12)]
    with grpc.insecure_channel(shared_server.otlp_grpc) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        stub.Export(make_logs_request("api-logs-a", a, {"region": "eu"}), timeout=30)
        stub.Export(make_logs_request("api-logs-b", b), timeout=30)
    return shared_server.http_url + "/api/spanlake/v1"


def _search(api: str, **params) -> dict:
    params.setdefault("start", str(T))
    params.setdefault("end", str(T + 60 * SEC))
    r = httpx.get(api + "/logs", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _labels(doc: dict) -> list[str]:
    return [next(a["value"] for a in x["attributes"] if a["key"] == "label") for x in doc["logs"]]


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"service": "api-logs-a"}, ["a4", "a3", "a2", "a1"]),
        ({"service": "api-logs-a", "start": str(T + 2 * SEC), "end": str(T + 4 * SEC)}, ["a3", "a2"]),
        ({"service": "api-logs-a", "minSeverity": "WARN"}, ["a4", "a3", "a2"]),
        ({"service": "api-logs-a", "minSeverity": "17"}, ["a4", "a3"]),
        ({"service": "api-logs-a", "contains": "ALICE"}, ["a3", "a1"]),
        ({"service": "api-logs-a", "contains": "91%"}, ["a2"]),
        ({"service": "api-logs-a", "regex": "^payment .* alice$"}, ["a3"]),
        ({"service": "api-logs-a", "contains": '"state":"lost"'}, ["a4"]),
        ({"service": "api-logs-a", "attr": "tenant=t1"}, ["a2", "a1"]),
        ({"service": "api-logs-a", "attr": ["tenant=t1", "user=alice"]}, ["a1"]),
        ({"service": "api-logs-a", "attr": "resource.region=eu", "minSeverity": "FATAL"}, ["a4"]),
        ({"service": "api-logs-a", "attr": "event.name=order.lost"}, ["a4"]),
        ({"traceId": TRACE.hex()}, ["a3", "a2", "a1"]),
        ({"traceId": TRACE.hex().upper(), "spanId": SPAN_2.hex()}, ["a2"]),
        ({"service": "api-logs-a", "attr": "tenant=t3"}, []),
        ({"service": "api-logs-nobody"}, []),
    ],
    ids=["service", "time-range", "min-severity-name", "min-severity-number", "contains", "contains-literal-percent",
         "regex", "contains-map-body", "attribute", "two-attributes", "resource-attribute", "event-name", "trace-id",
         "trace-and-span-id", "no-match", "unknown-service"],
)
def test_search_by_each_filter(api: str, params: dict, expected: list[str]) -> None:
    doc = _search(api, **params)
    assert _labels(doc) == expected
    assert doc["nextCursor"] is None


def test_record_json(api: str) -> None:
    (a4,) = _search(api, service="api-logs-a", minSeverity="FATAL")["logs"]
    assert a4["bodyType"] == "kvlist" and a4["bodyJson"] == {"order": 7, "state": "lost"}
    assert (a4["severityNumber"], a4["severity"], a4["eventName"], a4["traceId"], a4["service"]) == (
        21, "FATAL", "order.lost", "", "api-logs-a")
    (a2,) = _search(api, service="api-logs-a", spanId=SPAN_2.hex())["logs"]
    assert (a2["body"], a2["bodyType"], a2["bodyJson"], a2["severityText"], a2["timeNs"]) == (
        "Disk 91% full", "string", None, "WARN", T + 2 * SEC)
    assert (a2["traceId"], a2["spanId"]) == (TRACE.hex(), SPAN_2.hex())
    assert {"key": "region", "type": "string", "value": "eu"} in a2["resource"]["attributes"]
    assert a2["scope"]["name"] == "log-builder"


def test_cursor_pages_through_everything_once(api: str) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"service": "api-logs-b", "limit": "5"}
        if cursor:
            params["cursor"] = cursor
        doc = _search(api, **params)
        seen += _labels(doc)
        cursor = doc["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"b{i}" for i in range(11, -1, -1)]


def test_default_range_is_the_last_hour(api: str) -> None:
    r = httpx.get(api + "/logs", params={"service": "api-logs-b", "limit": "1"})
    assert r.status_code == 200 and _labels(r.json()) == ["b11"]
    assert r.json()["endNs"] - r.json()["startNs"] == 3600 * SEC
    r = httpx.get(api + "/logs", params={"service": "api-logs-b", "lookback": "1m"})
    assert r.json()["logs"] == []


def test_histogram_counts_with_zero_buckets(api: str) -> None:
    r = httpx.get(api + "/logs/histogram", params={"start": str(T), "end": str(T + 30 * SEC), "step": "10s",
                                                   "service": "api-logs-b", "minSeverity": "DEBUG"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["stepNs"], doc["total"]) == (10 * SEC, 12)
    assert doc["buckets"] == [{"startNs": T, "count": 0}, {"startNs": T + 10 * SEC, "count": 10},
                              {"startNs": T + 20 * SEC, "count": 2}]
    auto = httpx.get(api + "/logs/histogram", params={"start": str(T), "end": str(T + 3600 * SEC),
                                                      "service": "api-logs-a", "contains": "alice"}).json()
    assert auto["stepNs"] == 30 * SEC and len(auto["buckets"]) == 120 and auto["total"] == 2


def test_trace_logs_grouped_by_span(api: str) -> None:
    doc = httpx.get(f"{api}/traces/{TRACE.hex()}/logs").json()
    assert doc["traceId"] == TRACE.hex() and doc["logCount"] == 3
    assert [(g["spanId"], [x["body"] for x in g["logs"]]) for g in doc["spans"]] == [
        (SPAN_1.hex(), ["User alice logged in"]), (SPAN_2.hex(), ["Disk 91% full"]), ("", ["payment FAILED for alice"])]
    empty = httpx.get(f"{api}/traces/{os.urandom(16).hex()}/logs").json()
    assert (empty["logCount"], empty["spans"]) == (0, [])


@pytest.mark.parametrize(
    "path,params,param",
    [
        ("/logs", {"start": "yesterday"}, "start"),
        ("/logs", {"end": "1.5"}, "end"),
        ("/logs", {"start": "10", "end": "5"}, "end"),
        ("/logs", {"lookback": "forever"}, "lookback"),
        ("/logs", {"minSeverity": "LOUD"}, "minSeverity"),
        ("/logs", {"minSeverity": "300"}, "minSeverity"),
        ("/logs", {"regex": "a(b"}, "regex"),
        ("/logs", {"attr": "novalue"}, "attr"),
        ("/logs", {"traceId": "xyz"}, "traceId"),
        ("/logs", {"spanId": "0123456789abcdef00"}, "spanId"),
        ("/logs", {"limit": "0"}, "limit"),
        ("/logs", {"limit": "5000"}, "limit"),
        ("/logs", {"limit": "ten"}, "limit"),
        ("/logs", {"cursor": "!!"}, "cursor"),
        ("/logs/histogram", {"step": "often"}, "step"),
        ("/logs/histogram", {"step": "1ms"}, "step"),
        ("/logs/histogram", {"regex": "(?=x)"}, "regex"),
        ("/traces/not-hex/logs", {}, "traceId"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api: str, path: str, params: dict, param: str) -> None:
    r = httpx.get(api + path, params=params)
    assert r.status_code == 400, r.text
    assert f"'{param}'" in r.json()["detail"]
