SELECT * FROM (
    SELECT start_ns, duration_ns, status_code = 2 AS is_error, trace_id FROM lake.spans
    WHERE start_ns >= ?
    AND start_ns < ?
    AND service_name = ?
    AND name = ?
    AND kind = ?
    AND (attr_http_route IN (?, ?)
        OR len(list_filter(events, lambda x: map_extract_value(x.attributes, ?) IN (?, ?))) > 0
        OR len(list_filter(links, lambda x: map_extract_value(x.attributes, ?) IN (?, ?))) > 0
        OR scope_id IN (SELECT scope_id FROM lake.scopes WHERE map_extract_value(attributes, ?) IN (?, ?))
        OR resource_id IN (SELECT resource_id FROM lake.resources WHERE map_extract_value(attributes, ?) IN (?, ?)))
    ORDER BY start_ns DESC
    LIMIT ?
)
ORDER BY start_ns
-- params: [1, 2, "cart", "GET /cart", 2, "s/a", "y/a", "http.route", "s/a", "y/a", "http.route", "s/a", "y/a", "http.route", "s/a", "y/a", "http.route", "s/a", "y/a", 100]
