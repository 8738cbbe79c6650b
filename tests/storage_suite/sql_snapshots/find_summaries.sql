WITH hits AS (
    SELECT DISTINCT hex(trace_id) AS trace_key FROM lake.spans
    WHERE service_name = ?
)
SELECT any_value(i.trace_id) AS trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns,
    sum(i.span_count)::BIGINT AS span_count,
    sum(i.error_count)::BIGINT AS error_count,
    arg_min(i.root_service_name, i.root_start_ns) AS root_service_name,
    arg_min(i.root_span_name, i.root_start_ns) AS root_span_name,
    flatten(list(i.services)) AS services
FROM lake.trace_index AS i
WHERE i.trace_key IN (SELECT trace_key FROM hits)
GROUP BY i.trace_key
ORDER BY start_ns DESC, i.trace_key
LIMIT ?
-- params: ["cart", 20]
