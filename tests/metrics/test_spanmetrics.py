"""Span metrics checked exactly against the spans sent: counts, buckets, sums, exemplars,
extra dimensions and the cardinality limit."""

from __future__ import annotations

import os
import random
from bisect import bisect_left

import pytest

from spanlake.collector.logmetrics import LogMetrics
from spanlake.collector.spanmetrics import SpanMetrics
from spanlake.metrics_model import SPAN_CALLS, SPAN_DURATION, SPAN_DURATION_BOUNDS_MS
from tests.metrics.builders import CLIENT, SERVER, batch, by_labels, collected, span

BOUNDS = list(SPAN_DURATION_BOUNDS_MS)


def _labels(service, name, kind="SPAN_KIND_SERVER", status="STATUS_CODE_UNSET", **extra):
    return tuple(sorted({"service_name": service, "span_name": name, "span_kind": kind, "status_code": status,
                         **extra}.items()))


def test_counts_sums_and_buckets_match_the_spans_exactly() -> None:
    rng = random.Random(5)
    sm = SpanMetrics()
    expected: dict[tuple, list] = {}
    for service in ("cart", "shop"):
        for _ in range(6):  # several requests, aggregated together
            spans = []
            for _ in range(rng.randrange(1, 40)):
                name = rng.choice(["GET /a", "GET /b", "POST /c"])
                kind = rng.choice([SERVER, CLIENT])
                error = rng.random() < 0.2
                # durations on and around bucket bounds, and beyond the last one
                ms = rng.choice([0.0, 2.0, 2.000001, 3.0, 50.0, 1400.0, 15000.0, 15001.0, rng.uniform(0, 20000)])
                spans.append(span(os.urandom(16), name, kind, ms, error=error))
                key = _labels(service, name, "SPAN_KIND_SERVER" if kind == SERVER else "SPAN_KIND_CLIENT",
                              "STATUS_CODE_ERROR" if error else "STATUS_CODE_UNSET")
                acc = expected.setdefault(key, [0, 0.0, [0] * (len(BOUNDS) + 1)])
                duration_ns = int(ms * 1_000_000)
                acc[0] += 1
                acc[1] += duration_ns / 1e6
                acc[2][bisect_left(BOUNDS, duration_ns / 1e6)] += 1
            sm.observe(batch(service, spans))
    rows = collected(sm, time_ns=123)
    calls, durations = by_labels(rows, SPAN_CALLS.name), by_labels(rows, SPAN_DURATION.name)
    assert set(calls) == set(durations) == set(expected)
    for key, (n, total_ms, buckets) in expected.items():
        assert calls[key]["value"] == n and calls[key]["kind"] == "delta" and calls[key]["time_ns"] == 123
        d = durations[key]
        assert d["count"] == n and d["value"] == pytest.approx(total_ms)
        assert d["bounds"] == [float(b) for b in BOUNDS] and d["buckets"] == buckets
    assert collected(sm) == []  # deltas: the next interval starts empty


def test_one_exemplar_per_bucket_from_the_latest_span() -> None:
    sm = SpanMetrics()
    tid = os.urandom(16)
    first = span(tid, "op", SERVER, 5)
    second = span(tid, "op", SERVER, 4.5, start_ns=first.start_time_unix_nano + 1)
    slow = span(tid, "op", SERVER, 900)
    sm.observe(batch("svc", [first]))
    sm.observe(batch("svc", [second, slow]))
    (d,) = by_labels(collected(sm), SPAN_DURATION.name).values()
    assert [(e["bucket"], e["value"], e["span_id"]) for e in d["exemplars"]] == [
        (2, 4.5, second.span_id.hex()), (10, 900.0, slow.span_id.hex())]
    assert all(e["trace_id"] == tid.hex() for e in d["exemplars"])
    assert d["exemplars"][0]["time_ns"] == second.end_time_unix_nano


def test_extra_dimensions_from_span_then_resource() -> None:
    sm = SpanMetrics(["http.request.method", "deployment.environment.name", "retries"])
    spans = [span(os.urandom(16), "op", SERVER, 1, http__request__method="GET", retries=3),
             span(os.urandom(16), "op", SERVER, 1, deployment__environment__name="canary"),
             span(os.urandom(16), "op", SERVER, 1)]
    sm.observe(batch("svc", spans, {"deployment.environment.name": "prod"}))
    calls = by_labels(collected(sm), SPAN_CALLS.name)
    assert {k: r["value"] for k, r in calls.items()} == {
        _labels("svc", "op", http_request_method="GET", deployment_environment_name="prod", retries="3"): 1,
        _labels("svc", "op", deployment_environment_name="canary"): 1,
        _labels("svc", "op", deployment_environment_name="prod"): 1,
    }


def test_negative_durations_count_as_zero() -> None:
    sm = SpanMetrics()
    s = span(os.urandom(16), "op", SERVER, 1)
    s.end_time_unix_nano = s.start_time_unix_nano - 5_000_000
    sm.observe(batch("svc", [s]))
    (d,) = by_labels(collected(sm), SPAN_DURATION.name).values()
    assert d["value"] == 0 and d["buckets"][0] == 1


def test_cardinality_limit_sends_new_label_sets_to_the_overflow_series() -> None:
    sm = SpanMetrics(cardinality_limit=3)
    spans = [span(os.urandom(16), f"GET /session/{i}", SERVER, 1) for i in range(10)]
    sm.observe(batch("svc", spans[:2]))
    sm.observe(batch("svc", spans[2:]))
    calls = by_labels(collected(sm), SPAN_CALLS.name)
    assert len(calls) == 4
    assert calls[(("otel_metric_overflow", "true"),)]["value"] == 7
    assert sum(r["value"] for r in calls.values()) == 10
    # Known label sets stay admitted in later intervals; new ones still overflow.
    sm.observe(batch("svc", [span(os.urandom(16), "GET /session/0", SERVER, 1),
                             span(os.urandom(16), "GET /session/99", SERVER, 1)]))
    calls = by_labels(collected(sm), SPAN_CALLS.name)
    assert calls[_labels("svc", "GET /session/0")]["value"] == 1
    assert calls[(("otel_metric_overflow", "true"),)]["value"] == 1


def test_idle_label_sets_expire_from_the_limit() -> None:
    sm = SpanMetrics(cardinality_limit=1)
    sm.limit.expire_intervals = 2
    sm.observe(batch("svc", [span(os.urandom(16), "old", SERVER, 1)]))
    collected(sm)
    for _ in range(16):  # idle intervals
        collected(sm)
    sm.observe(batch("svc", [span(os.urandom(16), "new", SERVER, 1)]))
    assert set(by_labels(collected(sm), SPAN_CALLS.name)) == {_labels("svc", "new")}


def test_log_records_by_service_and_severity() -> None:
    lm = LogMetrics(cardinality_limit=100)
    lm.observe(["a", "a", "a", "b", "b"], [9, 12, 17, 0, 24])
    lm.observe(["a"], [30])
    rows = collected(lm)
    got = {(r["labels"]["service_name"], r["labels"]["severity"]): r["value"] for r in rows}
    assert got == {("a", "INFO"): 2, ("a", "ERROR"): 1, ("a", "UNSPECIFIED"): 1, ("b", "UNSPECIFIED"): 1,
                   ("b", "FATAL"): 1}
    assert all(r["metric"] == "spanlake_log_records_total" and r["kind"] == "delta" for r in rows)
