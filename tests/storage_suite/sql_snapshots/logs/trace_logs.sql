SELECT * EXCLUDE (trace_key, span_key) FROM lake.logs
WHERE time_ns BETWEEN ? AND ? AND trace_key = ?
ORDER BY time_ns, log_id
-- params: [10, 20, "000102030405060708090A0B0C0D0E0F"]
