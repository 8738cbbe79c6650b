DELETE FROM lake.trace_index
WHERE (max_start_ns < ? OR trace_key IN (SELECT trace_key FROM _straddling)) AND hex(trace_id) NOT IN (SELECT hex(trace_id) FROM lake.archived_traces)
-- params: [5]
