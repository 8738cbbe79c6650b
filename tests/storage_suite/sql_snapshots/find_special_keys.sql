WITH hits AS (
    SELECT DISTINCT hex(trace_id) AS trace_key FROM lake.spans
    WHERE status_code = 2
    AND kind = ?
    AND status_code = ?
    AND scope_name = ?
    AND scope_version = ?
    AND resource_id IN (SELECT resource_id FROM lake.resources WHERE map_extract_value(attributes, ?) IN (?, ?))
)
SELECT any_value(i.trace_id) AS trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns
FROM lake.trace_index AS i
WHERE i.trace_key IN (SELECT trace_key FROM hits)
GROUP BY i.trace_key
ORDER BY start_ns DESC, i.trace_key
LIMIT ?
-- params: [2, 1, "s", "1", "host.name", "sh", "yh", 20]
