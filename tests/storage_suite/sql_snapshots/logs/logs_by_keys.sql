SELECT * EXCLUDE (trace_key, span_key) FROM lake.logs
WHERE time_ns BETWEEN ? AND ? AND log_id IN (?, ?)
ORDER BY time_ns DESC, log_id DESC
-- params: [3, 5, 7, 18446744073709551615]
