"""The physical layout of span files: the order of rows and the size of row groups.

A trace lookup decodes every column of the row groups that may hold the trace (see
``trace_fetch.py``), so row groups are small: ``schema/table_options.sql`` sets the same
size as a DuckLake table option, which DuckLake's inserts and compaction follow.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

#: Rows per Parquet row group of span files (``schema/table_options.sql``).
SPAN_ROW_GROUP_ROWS = 4096
#: Spans per file written by the bulk loader: under the ``target_file_size`` of 32 MB, so that
#: compaction merges them as it merges commit files (here: in pairs, 1M spans, ~44 MB).
SPANS_PER_FILE = 500_000


def sort_spans(spans: pa.Table) -> pa.Table:
    """Spans in start order, as commits arriving in time order leave them."""
    return spans.take(pc.sort_indices(spans, [("start_ns", "ascending")]))
