WITH hits AS (
    SELECT DISTINCT hex(trace_id) AS trace_key FROM lake.spans
    WHERE ((map_extract_value(attributes, ?) IN (?, ?) OR (left(map_extract_value(attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(attributes, ?)) = ?))
        OR len(list_filter(events, lambda x: (map_extract_value(x.attributes, ?) IN (?, ?) OR (left(map_extract_value(x.attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(x.attributes, ?)) = ?)))) > 0
        OR len(list_filter(links, lambda x: (map_extract_value(x.attributes, ?) IN (?, ?) OR (left(map_extract_value(x.attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(x.attributes, ?)) = ?)))) > 0
        OR scope_id IN (SELECT scope_id FROM lake.scopes WHERE (map_extract_value(attributes, ?) IN (?, ?) OR (left(map_extract_value(attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(attributes, ?)) = ?)))
        OR resource_id IN (SELECT resource_id FROM lake.resources WHERE (map_extract_value(attributes, ?) IN (?, ?) OR (left(map_extract_value(attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(attributes, ?)) = ?))))
)
SELECT any_value(i.trace_id) AS trace_id, min(i.start_ns) AS start_ns, max(i.end_ns) AS end_ns
FROM lake.trace_index AS i
WHERE i.trace_key IN (SELECT trace_key FROM hits)
GROUP BY i.trace_key
ORDER BY start_ns DESC, i.trace_key
LIMIT ?
-- params: ["tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", 20]
