INSERT INTO lake.logs BY NAME
SELECT *, hex(trace_id) AS trace_key, hex(span_id) AS span_key FROM _batch_logs
-- params: []
