DELETE FROM lake.logs WHERE time_ns < ?
AND (trace_key IS NULL OR trace_key NOT IN (SELECT hex(trace_id) FROM lake.archived_traces))
-- params: [5]
