SELECT min(min_time_ns), max(max_time_ns) FROM lake.log_trace_index WHERE trace_key = ?
-- params: ["000102030405060708090A0B0C0D0E0F"]
