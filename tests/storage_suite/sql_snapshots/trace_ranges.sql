SELECT any_value(trace_id), min(start_ns) AS min_start_ns, max(max_start_ns) AS max_start_ns
FROM lake.trace_index
WHERE trace_key IN (?)
GROUP BY trace_key
-- params: ["000102030405060708090A0B0C0D0E0F"]
