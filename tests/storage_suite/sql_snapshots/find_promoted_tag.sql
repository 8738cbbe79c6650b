WITH hits AS (
    SELECT DISTINCT hex(trace_id) AS trace_key FROM lake.spans
    WHERE (attr_http_route IN (?, ?)
        OR len(list_filter(events, lambda x: map_extract_value(x.attributes, ?) IN (?, ?))) > 0
        OR len(list_filter(links, lambda x: map_extract_value(x.attributes, ?) IN (?, ?))) > 0
        OR scope_id IN (SELECT scope_id FROM lake.scopes WHERE map_extract_value(attributes, ?) IN (?, ?))
        OR resource_id IN (SELECT resource_id FROM lake.resources WHERE map_extract_value(attributes, ?) IN (?, ?)))
)
SELECT any_value(i.trace_id) AS trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns
FROM lake.trace_index AS i
WHERE i.trace_key IN (SELECT trace_key FROM hits)
GROUP BY i.trace_key
ORDER BY start_ns DESC, i.trace_key
LIMIT ?
-- params: ["s/a", "y/a", "http.route", "s/a", "y/a", "http.route", "s/a", "y/a", "http.route", "s/a", "y/a", "http.route", "s/a", "y/a", 20]
