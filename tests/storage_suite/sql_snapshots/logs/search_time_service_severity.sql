SELECT time_ns, log_id FROM lake.logs
WHERE time_ns >= ?
    AND time_ns < ?
    AND service_name = ?
    AND severity_number >= ?
ORDER BY time_ns DESC, log_id DESC
LIMIT ?
-- params: [1, 2, "cart", 13, 101]
