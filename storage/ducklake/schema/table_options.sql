-- Per-table DuckLake options of the read path (see layout.py), set right after the tables are
-- created: DuckLake refuses table options in the transaction that creates the table.
-- A trace lookup decodes every column of the row group that holds the trace: 4096-row row
-- groups cost about 4% in size against DuckDB's 122,880 and make lookups ~20x cheaper.
CALL lake.set_option('parquet_row_group_size', '4096', table_name => 'spans');
-- A DuckDB scan pays for every row group of every file it opens, so span files are kept
-- small: a time-window search opens one or two.
CALL lake.set_option('target_file_size', '32MB', table_name => 'spans');
-- Index lookups read a few columns of one row group per trace id.
CALL lake.set_option('parquet_row_group_size', '2048', table_name => 'trace_index');
