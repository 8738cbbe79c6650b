SELECT DISTINCT service_name FROM lake.spans ORDER BY service_name
-- params: []
