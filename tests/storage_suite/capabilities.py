"""What each backend of the storage suite opts out of (opt-outs only; everything else runs).

Features:

* ``write_queue``: a bounded write queue that can answer WriteQueueFull;
* ``multi_process``: several OS processes share one store;
* ``durability``: acknowledged spans survive kill -9 of the writing process;
* ``files``: data lives in files under the data directory (retention must delete them);
* ``compaction``: a ``compact()`` method that rewrites the stored data;
* ``sample_rollups``: metric samples rolled up into 5-minute windows (``rollup_samples()``).
"""

from __future__ import annotations

OPT_OUTS: dict[str, frozenset[str]] = {
    "memory": frozenset({"write_queue", "multi_process", "durability", "files", "compaction", "sample_rollups"}),
}


def supports(backend: str, feature: str) -> bool:
    return feature not in OPT_OUTS.get(backend, frozenset())
