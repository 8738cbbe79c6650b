"""Log-derived series: log records per service and severity (``spanlake_log_records_total``).

The ``severity`` label is the range name of the OTLP severity number (TRACE, DEBUG, INFO, WARN,
ERROR, FATAL; UNSPECIFIED for 0), so a rule such as
``sum by (service_name) (rate(spanlake_log_records_total{severity=~"ERROR|FATAL"}[5m]))`` reads
it without knowing severity numbers. Counting is vectorised: one ``numpy.unique`` per batch.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.series_limit import OVERFLOW_KEY, OVERFLOW_LABELS, SeriesLimit
from spanlake.metrics_model import DELTA, LOG_RECORDS, SampleRows, severity_label

#: Label of each severity range index (0: unspecified, 1: TRACE 1-4, ..., 6: FATAL 21-24).
_LABELS = [severity_label(n) for n in (0, 1, 5, 9, 13, 17, 21)]


class LogMetrics:
    """Counts log records between flushes; ``observe`` may be called from any thread."""

    def __init__(self, cardinality_limit: int = 0) -> None:
        self._lock = threading.Lock()
        self.limit = SeriesLimit(cardinality_limit)
        self._counts: dict[tuple, int] = {}

    def observe(
        self,
        service_names: Sequence[str] | pa.Array | pa.ChunkedArray,
        severity_numbers: Sequence[int] | pa.Array | pa.ChunkedArray | np.ndarray,
    ) -> None:
        if isinstance(service_names, (pa.Array, pa.ChunkedArray)):
            # Few distinct names: count by dictionary index, not by one Python string per record.
            names = service_names.combine_chunks() if isinstance(service_names, pa.ChunkedArray) else service_names
            encoded = pc.dictionary_encode(pc.fill_null(names.cast(pa.string()), "None"))
            services = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
            service_idx = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            services, service_idx = np.unique(np.asarray(service_names, dtype=object).astype(str), return_inverse=True)
        if isinstance(severity_numbers, (pa.Array, pa.ChunkedArray)):
            severity_numbers = severity_numbers.to_numpy(zero_copy_only=False)
        if len(service_idx) != len(severity_numbers):
            raise ValueError("service_names and severity_numbers differ in length")
        if not len(service_idx):
            return
        sev = np.nan_to_num(np.asarray(severity_numbers, dtype=np.float64), nan=0).astype(np.int64)
        ranges = np.where((sev >= 1) & (sev <= 24), (sev - 1) // 4 + 1, 0)
        pairs, counts = np.unique(service_idx * 8 + ranges, return_counts=True)
        with self._lock:
            for pair, n in zip(pairs.tolist(), counts.tolist()):
                key = self.limit.admit((str(services[pair // 8]), _LABELS[pair % 8]))
                self._counts[key] = self._counts.get(key, 0) + n

    def collect(self, time_ns: int, rows: SampleRows) -> None:
        with self._lock:
            counts, self._counts = self._counts, {}
            self.limit.next_interval()
        for key, n in counts.items():
            labels = OVERFLOW_LABELS if key == OVERFLOW_KEY else {"service_name": key[0], "severity": key[1]}
            rows.add(LOG_RECORDS.name, labels, DELTA, time_ns, n, monotonic=True)
