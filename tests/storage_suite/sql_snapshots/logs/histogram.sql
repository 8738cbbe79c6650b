SELECT time_ns - (((time_ns - ?) % ?) + ?) % ? AS bucket_ns, count(*) AS n
FROM lake.logs
WHERE time_ns >= ?
    AND service_name = ?
GROUP BY bucket_ns
ORDER BY bucket_ns
-- params: [100, 60, 60, 60, 100, "cart"]
