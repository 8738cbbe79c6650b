-- Spanlake tables in the DuckLake catalog attached as "lake".
-- Applied once, in one transaction, by the first store that finds the tables missing.

-- One row per span: the columns of spanlake.model.SPAN_SCHEMA, in its order.
CREATE TABLE IF NOT EXISTS lake.spans (
    trace_id BLOB,
    span_id BLOB,
    parent_span_id BLOB,
    trace_state VARCHAR,
    flags UINTEGER,
    name VARCHAR,
    kind UTINYINT,
    start_ns BIGINT,
    duration_ns BIGINT,
    status_code UTINYINT,
    status_message VARCHAR,
    service_name VARCHAR,
    resource_id UBIGINT,
    scope_id UBIGINT,
    scope_name VARCHAR,
    scope_version VARCHAR,
    attributes MAP(VARCHAR, VARCHAR),
    attr_http_request_method VARCHAR,
    attr_http_method VARCHAR,
    attr_http_route VARCHAR,
    attr_http_response_status_code VARCHAR,
    attr_http_status_code VARCHAR,
    attr_db_system VARCHAR,
    attr_peer_service VARCHAR,
    attr_rpc_service VARCHAR,
    attr_error_type VARCHAR,
    dropped_attributes_count UINTEGER,
    events STRUCT(
        time_ns BIGINT,
        name VARCHAR,
        attributes MAP(VARCHAR, VARCHAR),
        dropped_attributes_count UINTEGER
    )[],
    dropped_events_count UINTEGER,
    links STRUCT(
        trace_id BLOB,
        span_id BLOB,
        trace_state VARCHAR,
        flags UINTEGER,
        attributes MAP(VARCHAR, VARCHAR),
        dropped_attributes_count UINTEGER
    )[],
    dropped_links_count UINTEGER
);

-- One row per distinct resource / scope id (RESOURCE_SCHEMA, SCOPE_SCHEMA). Writers in several
-- processes may insert the same id twice; readers take any one row per id.
CREATE TABLE IF NOT EXISTS lake.resources (
    resource_id UBIGINT,
    service_name VARCHAR,
    attributes MAP(VARCHAR, VARCHAR),
    dropped_attributes_count UINTEGER,
    schema_url VARCHAR
);

CREATE TABLE IF NOT EXISTS lake.scopes (
    scope_id UBIGINT,
    name VARCHAR,
    version VARCHAR,
    attributes MAP(VARCHAR, VARCHAR),
    dropped_attributes_count UINTEGER,
    schema_url VARCHAR
);

-- Trace index and summary: one partial row per trace per commit, aggregated at read time.
-- trace_key is hex(trace_id), the column lookups filter on: DuckLake 1.5.5 prunes files wrongly
-- for BLOB filters (see search_sql.py), text statistics work.
-- max_start_ns lets retention tell rows whose spans are all expired from rows it must rebuild.
-- root_* come from the earliest span without a parent in the rows' spans (NULL when none).
CREATE TABLE IF NOT EXISTS lake.trace_index (
    trace_key VARCHAR,
    trace_id BLOB,
    start_ns BIGINT,
    max_start_ns BIGINT,
    end_ns BIGINT,
    span_count BIGINT,
    error_count BIGINT,
    root_service_name VARCHAR,
    root_span_name VARCHAR,
    root_start_ns BIGINT,
    services STRUCT(name VARCHAR, span_count BIGINT, error_count BIGINT)[]
);

-- Traces exempt from retention.
CREATE TABLE IF NOT EXISTS lake.archived_traces (
    trace_id BLOB,
    archived_at_ns BIGINT
);

-- One row per log record: the columns of spanlake.log_model.LOG_SCHEMA, in its order, then
-- trace_key/span_key, the hex of the ids (filled on insert), which lookups filter on instead of
-- the BLOBs (see search_sql.py). Resources and scopes are the rows spans use.
CREATE TABLE IF NOT EXISTS lake.logs (
    time_ns BIGINT,
    observed_time_ns BIGINT,
    severity_number UTINYINT,
    severity_text VARCHAR,
    body VARCHAR,
    body_value VARCHAR,
    attributes MAP(VARCHAR, VARCHAR),
    dropped_attributes_count UINTEGER,
    flags UINTEGER,
    trace_id BLOB,
    span_id BLOB,
    event_name VARCHAR,
    service_name VARCHAR,
    resource_id UBIGINT,
    scope_id UBIGINT,
    scope_name VARCHAR,
    scope_version VARCHAR,
    log_id UBIGINT,
    trace_key VARCHAR,
    span_key VARCHAR
);

-- Where the logs of a trace are in time: one row per trace per commit, so that the logs of a
-- trace are read from the files of that time range instead of a scan of every trace_key.
CREATE TABLE IF NOT EXISTS lake.log_trace_index (
    trace_key VARCHAR,
    min_time_ns BIGINT,
    max_time_ns BIGINT
);

-- Compaction (ducklake_merge_adjacent_files) writes the trace index sorted by trace_key, so
-- that min/max statistics prune files and row groups for index lookups and search joins. The spans table has no sort key: DuckLake 1.5.5 also sorts on
-- INSERT when a table has one (its sort_on_insert option is not honoured), which cost 30-50%
-- of insert speed here, and a commit's file is a single row group that sorting cannot help.
-- Commits arrive in time order, so files (and merged files' row groups) already cover narrow
-- start_ns ranges, which is what trace lookups filter on.
ALTER TABLE lake.trace_index SET SORTED BY (trace_key);
-- The log trace index likewise, for its lookups.
ALTER TABLE lake.log_trace_index SET SORTED BY (trace_key);
