SELECT trace_id, max(start_ns) AS last_ns FROM lake.spans
WHERE start_ns >= ? AND start_ns < ?
    AND service_name = ?
    AND (map_extract_value(attributes, ?) IN (?, ?, ?, ?)
        OR len(list_filter(events, lambda x: map_extract_value(x.attributes, ?) IN (?, ?, ?, ?))) > 0
        OR len(list_filter(links, lambda x: map_extract_value(x.attributes, ?) IN (?, ?, ?, ?))) > 0
        OR scope_id IN (SELECT scope_id FROM lake.scopes WHERE map_extract_value(attributes, ?) IN (?, ?, ?, ?))
        OR resource_id IN (SELECT resource_id FROM lake.resources WHERE map_extract_value(attributes, ?) IN (?, ?, ?, ?)))
GROUP BY trace_id
ORDER BY last_ns DESC, trace_id
LIMIT ?
-- params: [10, 20, "cart", "customer", "s42", "i42", "d42.0", "y42", "customer", "s42", "i42", "d42.0", "y42", "customer", "s42", "i42", "d42.0", "y42", "customer", "s42", "i42", "d42.0", "y42", "customer", "s42", "i42", "d42.0", "y42", 49]
