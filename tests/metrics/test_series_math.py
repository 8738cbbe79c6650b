"""Quantiles, windows and counter increases, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spanlake.query import series_math as sm
from spanlake.storage.api import SampleSeries


@pytest.mark.parametrize(
    "q,bounds,buckets,expected",
    [
        (0.5, [1, 2, 4], [10, 10, 0, 0], 1.0),
        (0.75, [1, 2, 4], [10, 10, 0, 0], 1.5),
        (0.25, [1, 2, 4], [0, 0, 8, 0], 2.5),  # interpolates inside (2, 4]
        (0.99, [1, 2, 4], [0, 0, 0, 5], 4.0),  # +Inf bucket: the last finite bound
        (0.5, [-1, 1], [5, 5, 0], -1.0),  # first bucket with a bound <= 0
        (0.5, [1, 2], [0, 0, 0], math.nan),  # no observations
        (1.5, [1, 2], [1, 0, 0], math.inf),
        (-0.5, [1, 2], [1, 0, 0], -math.inf),
    ],
)
def test_histogram_quantile(q, bounds, buckets, expected) -> None:
    (got,) = sm.histogram_quantile(q, bounds, np.array([buckets], dtype=float))
    assert got == pytest.approx(expected, nan_ok=True)


def test_window_sums_count_intervals_that_ended_in_the_window() -> None:
    sums, present = sm.window_sums(np.array([0, 10, 20]), np.array([1.0, 2.0, 3.0]), np.array([5, 10, 20, 30, 40, 50]),
                                   window_ns=20, interval_ns=10)
    assert sums.tolist() == [0, 1, 3, 5, 3, 0]
    assert present.tolist() == [False, True, True, True, True, False]
    two_d, _ = sm.window_sums(np.array([0, 10]), np.array([[1.0, 0.0], [2.0, 5.0]]), np.array([20]), 20, 10)
    assert two_d.tolist() == [[3.0, 5.0]]


def _cumulative(values, starts, times=None) -> SampleSeries:
    times = times or list(range(0, 10 * len(values), 10))
    return SampleSeries("c_total", {"a": "1"}, "cumulative", True, times_ns=times, last_ns=times,
                        values=[float(v) for v in values], start_ns=starts)


def test_increases_of_cumulative_counters_handle_resets() -> None:
    s = _cumulative([5, 8, 2, 4, 1], [-1, -1, -1, 25, 25])
    assert sm.increases(s, range_start_ns=0).values.tolist() == [0, 3, 2, 4, 1]  # drop; new start
    # a series that started inside the range counts its first value in full
    assert sm.increases(_cumulative([5, 8], [3, 3]), range_start_ns=0).values.tolist() == [5, 3]


def test_sum_by_aligns_steps_and_adds_histograms() -> None:
    a = sm.Series({"svc": "a", "op": "x"}, "delta_histogram", np.array([0, 10]), np.array([1.0, 2.0]),
                  np.array([1.0, 1.0]), [1.0], np.array([[1.0, 0.0], [0.0, 1.0]]))
    b = sm.Series({"svc": "a", "op": "y"}, "delta_histogram", np.array([10, 20]), np.array([4.0, 8.0]),
                  np.array([2.0, 1.0]), [1.0], np.array([[2.0, 0.0], [0.0, 1.0]]))
    (g,) = sm.sum_by([a, b], ["svc"])
    assert g.labels == {"svc": "a"}
    assert g.times.tolist() == [0, 10, 20] and g.values.tolist() == [1, 6, 8]
    assert g.counts.tolist() == [1, 3, 1] and g.buckets.tolist() == [[1, 0], [2, 1], [0, 1]]
