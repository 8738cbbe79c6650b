DELETE FROM lake.log_trace_index WHERE max_time_ns < ? AND trace_key NOT IN (SELECT hex(trace_id) FROM lake.archived_traces)
-- params: [5]
