SELECT DISTINCT name, kind FROM lake.spans WHERE service_name = ? AND kind = ? ORDER BY name, kind
-- params: ["cart", 2]
