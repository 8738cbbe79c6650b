SELECT DISTINCT trace_key FROM lake.trace_index
WHERE start_ns < ? AND max_start_ns >= ? AND hex(trace_id) NOT IN (SELECT hex(trace_id) FROM lake.archived_traces)
-- params: [5, 5]
