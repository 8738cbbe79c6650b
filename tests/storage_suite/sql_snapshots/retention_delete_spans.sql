DELETE FROM lake.spans WHERE start_ns < ? AND hex(trace_id) NOT IN (SELECT hex(trace_id) FROM lake.archived_traces)
-- params: [5]
