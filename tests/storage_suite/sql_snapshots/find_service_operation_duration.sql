WITH hits AS (
    SELECT DISTINCT hex(trace_id) AS trace_key FROM lake.spans
    WHERE service_name = ?
    AND name = ?
    AND duration_ns >= ?
)
SELECT any_value(i.trace_id) AS trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns
FROM lake.trace_index AS i
WHERE i.trace_key IN (SELECT trace_key FROM hits)
GROUP BY i.trace_key
ORDER BY start_ns DESC, i.trace_key
LIMIT ?
-- params: ["cart", "GET /cart", 1000000, 20]
