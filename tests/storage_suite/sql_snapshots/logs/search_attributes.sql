SELECT time_ns, log_id FROM lake.logs
WHERE (map_extract_value(attributes, ?) IN (?, ?, ?, ?)
        OR scope_id IN (SELECT scope_id FROM lake.scopes WHERE map_extract_value(attributes, ?) IN (?, ?, ?, ?))
        OR resource_id IN (SELECT resource_id FROM lake.resources WHERE map_extract_value(attributes, ?) IN (?, ?, ?, ?)))
    AND resource_id IN (SELECT resource_id FROM lake.resources WHERE map_extract_value(attributes, ?) IN (?, ?))
    AND scope_name = ?
    AND scope_version = ?
    AND event_name = ?
    AND ((map_extract_value(attributes, ?) IN (?, ?) OR (left(map_extract_value(attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(attributes, ?)) = ?))
        OR scope_id IN (SELECT scope_id FROM lake.scopes WHERE (map_extract_value(attributes, ?) IN (?, ?) OR (left(map_extract_value(attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(attributes, ?)) = ?)))
        OR resource_id IN (SELECT resource_id FROM lake.resources WHERE (map_extract_value(attributes, ?) IN (?, ?) OR (left(map_extract_value(attributes, ?), 1) IN ('a', 'k') AND spanlake_string_form(map_extract_value(attributes, ?)) = ?))))
ORDER BY time_ns DESC, log_id DESC
LIMIT ?
-- params: ["user", "s42", "i42", "d42.0", "y42", "user", "s42", "i42", "d42.0", "y42", "user", "s42", "i42", "d42.0", "y42", "host.name", "sh", "yh", "s", "1", "e", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", "tags", "s[\"x\"]", "y[\"x\"]", "tags", "tags", "[\"x\"]", 11]
