WITH child AS (
    SELECT hex(trace_id) AS trace_key, hex(parent_span_id) AS parent_key, service_name, status_code
    FROM lake.spans
    WHERE start_ns >= ? AND start_ns < ? AND parent_span_id IS NOT NULL
), parent AS (
    SELECT hex(trace_id) AS trace_key, hex(span_id) AS span_key, service_name FROM lake.spans
    WHERE hex(trace_id) IN (SELECT trace_key FROM child)
)
SELECT parent.service_name AS parent, child.service_name AS child,
    count(*) AS call_count, count_if(child.status_code = 2) AS error_count
FROM child JOIN parent ON child.trace_key = parent.trace_key AND child.parent_key = parent.span_key
WHERE parent.service_name <> child.service_name
GROUP BY ALL
ORDER BY parent, child
-- params: [1, 2]
