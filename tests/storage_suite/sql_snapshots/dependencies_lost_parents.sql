SELECT hash(trace_id, span_id) AS self_key, service_name FROM lake.spans
WHERE start_ns < ? AND hash(trace_id, span_id) IN (SELECT lost_key FROM _lost)
-- params: [5]
