SELECT * FROM (
    SELECT start_ns, duration_ns, status_code = 2 AS is_error, trace_id FROM lake.spans
    WHERE start_ns >= ?
    AND start_ns < ?
    AND service_name = ?
    ORDER BY start_ns DESC
    LIMIT ?
)
ORDER BY start_ns
-- params: [1, 2, "cart", 1000000]
