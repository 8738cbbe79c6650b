SELECT time_ns, log_id FROM lake.logs
WHERE (time_ns < ? OR (time_ns = ? AND log_id < ?))
    AND trace_key = ?
    AND span_key = ?
ORDER BY time_ns DESC, log_id DESC
LIMIT ?
-- params: [5, 5, 7, "000102030405060708090A0B0C0D0E0F", "0001020304050607", 11]
