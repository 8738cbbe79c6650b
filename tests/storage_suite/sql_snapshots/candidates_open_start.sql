SELECT trace_id, max(start_ns) AS last_ns FROM lake.spans
WHERE start_ns < ?
    AND name = ?
GROUP BY trace_id
ORDER BY last_ns DESC, trace_id
LIMIT ?
-- params: [20, "GET /cart", 9]
