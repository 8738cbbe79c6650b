"""Metric samples in every backend: combining rows per step, label matchers, ranges, rollups."""

from __future__ import annotations

import math

import pytest

from spanlake.metrics_model import (
    CUMULATIVE,
    CUMULATIVE_HISTOGRAM,
    DELTA,
    DELTA_HISTOGRAM,
    GAUGE,
    ExemplarRow,
    SampleRows,
)
from spanlake.storage.api import Exemplar, InvalidSampleQuery, LabelMatcher, SampleQuery, SampleSeries

from .conftest import Site

SEC = 1_000_000_000
T0 = 1_790_000_100 * SEC - (1_790_000_100 * SEC) % (300 * SEC)  # a multiple of 5 minutes
BOUNDS = [1.0, 5.0, 10.0]


def _write(store, rows: SampleRows) -> None:
    store.write_samples(rows.batch()).result(timeout=30)


def _q(*metrics: str, start: int = T0, end: int = T0 + 600 * SEC, step: int = 60 * SEC, **kw) -> SampleQuery:
    return SampleQuery(metrics=metrics, start_ns=start, end_ns=end, step_ns=step, **kw)


def _by_labels(series: list[SampleSeries]) -> dict[tuple, SampleSeries]:
    return {tuple(sorted(s.labels.items())): s for s in series}


def test_delta_rows_of_several_writers_add_up_per_step(site: Site) -> None:
    store = site.open()
    a, b = SampleRows(), SampleRows()
    for t, v in ((0, 1.0), (15, 2.0), (60, 4.0)):
        a.add("calls_total", {"service_name": "cart"}, DELTA, T0 + t * SEC, v, monotonic=True)
    b.add("calls_total", {"service_name": "cart"}, DELTA, T0 + 15 * SEC, 10.0, monotonic=True)
    b.add("calls_total", {"service_name": "shop"}, DELTA, T0 + 15 * SEC, 7.0, monotonic=True)
    _write(store, a)
    _write(store, b)
    got = _by_labels(store.query_samples(_q("calls_total")))
    cart = got[(("service_name", "cart"),)]
    assert cart.kind == DELTA and cart.monotonic
    assert cart.times_ns == [T0, T0 + 60 * SEC]
    assert cart.values == [13.0, 4.0]
    assert cart.last_ns == [T0 + 15 * SEC, T0 + 60 * SEC]
    assert got[(("service_name", "shop"),)].values == [7.0]


def test_gauges_and_cumulative_keep_the_latest_row(site: Site) -> None:
    store = site.open()
    rows = SampleRows()
    rows.add("temp", {"room": "a"}, GAUGE, T0 + 10 * SEC, 20.0)
    rows.add("temp", {"room": "a"}, GAUGE, T0 + 50 * SEC, 21.5)
    rows.add("reqs_total", {"job": "x"}, CUMULATIVE, T0 + 5 * SEC, 100.0, monotonic=True, start_ns=T0 - SEC)
    rows.add("reqs_total", {"job": "x"}, CUMULATIVE, T0 + 45 * SEC, 130.0, monotonic=True, start_ns=T0 - SEC)
    _write(store, rows)
    (temp,) = store.query_samples(_q("temp"))
    assert (temp.kind, temp.values, temp.last_ns) == (GAUGE, [21.5], [T0 + 50 * SEC])
    (reqs,) = store.query_samples(_q("reqs_total"))
    assert (reqs.values, reqs.start_ns) == ([130.0], [T0 - SEC])


def test_histograms_sum_bucket_by_bucket_and_keep_exemplars(site: Site) -> None:
    store = site.open()
    rows = SampleRows()
    labels = {"service_name": "cart", "span_name": "GET /"}
    rows.add("dur", labels, DELTA_HISTOGRAM, T0, 7.0, count=3, bounds=BOUNDS, buckets=[1, 2, 0, 0],
             exemplars=[ExemplarRow(0, 0.5, T0, "a" * 32, "b" * 16), ExemplarRow(1, 3.0, T0, "c" * 32, "d" * 16)])
    rows.add("dur", labels, DELTA_HISTOGRAM, T0 + 20 * SEC, 30.0, count=2, bounds=BOUNDS, buckets=[0, 1, 0, 1],
             exemplars=[ExemplarRow(1, 4.0, T0 + 20 * SEC, "e" * 32, "f" * 16)])
    rows.add("cdur", {}, CUMULATIVE_HISTOGRAM, T0 + 1 * SEC, 1.0, count=1, bounds=BOUNDS, buckets=[1, 0, 0, 0])
    rows.add("cdur", {}, CUMULATIVE_HISTOGRAM, T0 + 9 * SEC, 9.0, count=4, bounds=BOUNDS, buckets=[1, 2, 1, 0])
    _write(store, rows)
    (dur,) = store.query_samples(_q("dur", exemplars=True))
    assert dur.values == [37.0] and dur.counts == [5.0]
    assert dur.bounds == [BOUNDS] and dur.buckets == [[1.0, 3.0, 0.0, 1.0]]
    assert dur.exemplars == [[Exemplar(0, 0.5, T0, "a" * 32, "b" * 16), Exemplar(1, 4.0, T0 + 20 * SEC, "e" * 32, "f" * 16)]]
    (cdur,) = store.query_samples(_q("cdur"))
    assert (cdur.values, cdur.counts, cdur.buckets) == ([9.0], [4.0], [[1.0, 2.0, 1.0, 0.0]])
    assert cdur.exemplars is None


@pytest.mark.parametrize(
    "matchers,expected",
    [
        ((LabelMatcher("service_name", "=", "cart"),), {"cart-get", "cart-put"}),
        ((LabelMatcher("service_name", "!=", "cart"),), {"shop-get", "none"}),
        ((LabelMatcher("op", "=~", "GET|PUT"),), {"cart-get", "cart-put", "shop-get"}),
        ((LabelMatcher("op", "=~", "G.*"),), {"cart-get", "shop-get"}),
        ((LabelMatcher("op", "=~", "ET"),), set()),  # anchored
        ((LabelMatcher("op", "!~", "GET"),), {"cart-put", "none"}),
        ((LabelMatcher("service_name", "=", ""),), {"none"}),  # a missing label is ""
        ((LabelMatcher("service_name", "=~", "cart|"), LabelMatcher("op", "!=", "PUT")), {"cart-get", "none"}),
        ((LabelMatcher("__name__", "=", "m"),), {"cart-get", "cart-put", "shop-get", "none"}),
    ],
)
def test_label_matchers(site: Site, matchers, expected) -> None:
    store = site.open()
    rows = SampleRows()
    for name, labels in (
        ("cart-get", {"service_name": "cart", "op": "GET"}),
        ("cart-put", {"service_name": "cart", "op": "PUT"}),
        ("shop-get", {"service_name": "shop", "op": "GET"}),
        ("none", {"id": "x"}),
    ):
        rows.add("m", {**labels, "case": name}, DELTA, T0, 1.0)
    rows.add("other", {"service_name": "cart", "op": "GET", "case": "other"}, DELTA, T0, 1.0)
    _write(store, rows)
    got = {s.labels["case"] for s in store.query_samples(_q("m", matchers=matchers))}
    assert got == expected


def test_range_is_start_inclusive_end_exclusive(site: Site) -> None:
    store = site.open()
    rows = SampleRows()
    for t in (-1, 0, 59, 60, 119, 120):
        rows.add("c", {}, DELTA, T0 + t * SEC, 1.0)
    _write(store, rows)
    (s,) = store.query_samples(_q("c", end=T0 + 120 * SEC))
    assert (s.times_ns, s.values) == ([T0, T0 + 60 * SEC], [2.0, 2.0])
    assert store.query_samples(_q("c", start=T0 + 200 * SEC, end=T0 + 300 * SEC)) == []
    assert store.query_samples(_q("missing")) == []


@pytest.mark.parametrize(
    "query,needle",
    [
        (SampleQuery(("m",), T0, T0 + SEC, 0), "step"),
        (SampleQuery(("m",), T0, T0, SEC), "end"),
        (SampleQuery((), T0, T0 + SEC, SEC), "metric name"),
        (SampleQuery(("m",), T0, T0 + 100_000 * SEC, 1 * SEC), "maximum resolution"),
        (SampleQuery(("m",), T0, T0 + SEC, SEC, (LabelMatcher("a", "~", "b"),)), "operator"),
        (SampleQuery(("m",), T0, T0 + SEC, SEC, (LabelMatcher("a", "=~", "("),)), "regular expression"),
    ],
)
def test_invalid_queries(site: Site, query: SampleQuery, needle: str) -> None:
    store = site.open()
    with pytest.raises(InvalidSampleQuery, match=needle):
        store.query_samples(query)


def test_rollups_answer_long_ranges_exactly(site: Site) -> None:
    if not site.supports("sample_rollups"):
        pytest.skip(f"{site.backend} does not roll samples up")
    store = site.open()
    rows = SampleRows()
    for i in range(60):  # 30 minutes at 30 s, two writers
        t = T0 + i * 30 * SEC
        for writer in range(2):
            rows.add("calls_total", {"service_name": "cart"}, DELTA, t, 1.0 + writer, monotonic=True)
            rows.add("dur", {"service_name": "cart"}, DELTA_HISTOGRAM, t, 2.0, count=1, bounds=BOUNDS,
                     buckets=[0, 1, 0, 0], exemplars=[ExemplarRow(1, 2.0, t, f"{i:032x}", f"{writer:016x}")])
        rows.add("temp", {}, GAUGE, t, float(i))
    _write(store, rows)
    queries = [_q(m, end=T0 + 1800 * SEC, step=600 * SEC, exemplars=True) for m in ("calls_total", "dur", "temp")]
    before = [store.query_samples(q) for q in queries]
    store.rollup_samples(T0 + 1800 * SEC + 600 * SEC + 1)  # every window older than the lag
    after = [store.query_samples(q) for q in queries]
    assert after == before
    calls, dur, temp = (r[0] for r in after)
    assert calls.values == [60.0, 60.0, 60.0]
    assert dur.buckets == [[0.0, 40.0, 0.0, 0.0]] * 3 and dur.counts == [40.0] * 3
    assert dur.exemplars[-1][0].trace_id == f"{59:032x}"
    assert temp.values == [19.0, 39.0, 59.0]
    # Rows written later than the rollup still count in the steps above the watermark.
    late = SampleRows()
    late.add("calls_total", {"service_name": "cart"}, DELTA, T0 + 1800 * SEC, 5.0, monotonic=True)
    _write(store, late)
    (calls,) = store.query_samples(_q("calls_total", end=T0 + 2400 * SEC, step=600 * SEC))
    assert calls.values == [60.0, 60.0, 60.0, 5.0]


def test_nan_values_come_back(site: Site) -> None:
    store = site.open()
    rows = SampleRows()
    rows.add("g", {}, GAUGE, T0, math.nan)
    _write(store, rows)
    (g,) = store.query_samples(_q("g"))
    assert math.isnan(g.values[0])


def test_raw_samples_past_retention_go_once_rolled_up(site: Site) -> None:
    if not site.supports("sample_rollups"):
        pytest.skip(f"{site.backend} does not roll samples up")
    store = site.open(retention_ns=3600 * SEC)
    rows = SampleRows()
    for i in range(12):  # an hour at 5 minutes
        rows.add("calls_total", {}, DELTA, T0 + i * 300 * SEC, 1.0, monotonic=True)
    _write(store, rows)
    store.rollup_samples(T0 + 3 * 3600 * SEC)
    aligned = store.query_samples(_q("calls_total", end=T0 + 3600 * SEC, step=1800 * SEC))
    assert aligned[0].values == [6.0, 6.0]  # from the rollup
    assert store.query_samples(_q("calls_total", end=T0 + 3600 * SEC, step=60 * SEC)) == []  # raw rows are gone
