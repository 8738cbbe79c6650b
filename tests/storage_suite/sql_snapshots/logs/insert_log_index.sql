INSERT INTO lake.log_trace_index BY NAME
SELECT hex(trace_id) AS trace_key, min(time_ns) AS min_time_ns, max(time_ns) AS max_time_ns
FROM _batch_logs WHERE trace_id IS NOT NULL GROUP BY trace_id
-- params: []
