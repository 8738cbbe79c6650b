INSERT INTO lake.archived_traces SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM lake.archived_traces WHERE hex(trace_id) = ?)
-- params: ["000102030405060708090a0b0c0d0e0f", 7, "000102030405060708090A0B0C0D0E0F"]
