INSERT INTO lake.trace_index BY NAME
WITH per_service AS (
    SELECT
        trace_id,
        service_name,
        min(start_ns) AS start_ns,
        max(start_ns) AS max_start_ns,
        max(start_ns + duration_ns) AS end_ns,
        count(*) AS span_count,
        count_if(status_code = 2) AS error_count,
        min(start_ns) FILTER (WHERE parent_span_id IS NULL OR octet_length(parent_span_id) = 0) AS root_start_ns,
        arg_min(name, start_ns) FILTER (WHERE parent_span_id IS NULL OR octet_length(parent_span_id) = 0) AS root_span_name
    FROM _batch_spans
    GROUP BY trace_id, service_name
)
SELECT
    hex(trace_id) AS trace_key,
    trace_id,
    min(start_ns) AS start_ns,
    max(max_start_ns) AS max_start_ns,
    max(end_ns) AS end_ns,
    sum(span_count)::BIGINT AS span_count,
    sum(error_count)::BIGINT AS error_count,
    arg_min(service_name, root_start_ns) AS root_service_name,
    arg_min(root_span_name, root_start_ns) AS root_span_name,
    min(root_start_ns) AS root_start_ns,
    list({'name': service_name, 'span_count': span_count, 'error_count': error_count} ORDER BY service_name) AS services
FROM per_service
GROUP BY trace_id
-- params: []
