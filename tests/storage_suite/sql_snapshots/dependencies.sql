WITH s AS (
    SELECT hash(trace_id, span_id) AS self_key,
        CASE WHEN octet_length(parent_span_id) > 0 THEN hash(trace_id, parent_span_id) END AS parent_key,
        service_name, status_code, start_ns
    FROM lake.spans
    WHERE start_ns >= ? AND start_ns < ?
)
SELECT p.service_name AS parent, c.service_name AS child, c.status_code = 2 AS is_error,
    CASE WHEN p.self_key IS NULL THEN c.parent_key END AS lost_key, count(*) AS calls
FROM s AS c LEFT JOIN s AS p ON c.parent_key = p.self_key
WHERE c.start_ns >= ? AND c.parent_key IS NOT NULL
GROUP BY ALL
-- params: [-899999999999, 2, 1]
