SELECT time_ns, log_id FROM lake.logs
WHERE body ILIKE ? ESCAPE '\'
    AND regexp_matches(body, ?)
ORDER BY time_ns DESC, log_id DESC
LIMIT ?
-- params: ["%50\\%\\_off%", "^a.*b$", 11]
