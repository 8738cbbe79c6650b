WITH hits AS (
    SELECT DISTINCT hex(trace_id) AS trace_key FROM lake.spans
    WHERE start_ns >= ?
    AND start_ns < ?
    AND kind = ?
    AND duration_ns <= ?
)
SELECT any_value(i.trace_id) AS trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns
FROM lake.trace_index AS i
WHERE i.trace_key IN (SELECT trace_key FROM hits)
GROUP BY i.trace_key
ORDER BY start_ns DESC, i.trace_key
-- params: [1, 2, 2, 5]
