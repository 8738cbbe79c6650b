"""Which row groups of a span file may hold an attribute value: a Bloom filter per row group.

A search by attribute value must otherwise decode the attribute maps of every span of its
window (10M spans over a day: 416k spans and 2.5M map entries for one hour, 90-190 ms in
DuckDB). Per span file (immutable once written), this keeps one Bloom filter per Parquet row
group over *tokens*: DuckDB ``hash()`` of

* ``('a', key, encoded value)`` for every attribute of the span's map and its promoted columns
  (``spanlake.model.PROMOTED_KEYS``);
* ``('r', resource_id)`` and ``('s', scope_id)``.

A Jaeger tag condition (``search_sql.attribute_matches_sql``) can hold on a span only if one of
its tokens is there: a span attribute with one of the encoded values whose string form is the
text (``search_sql.tag_value_candidates``), or a resource or scope id whose attributes match
(``Hints.side_ids``), or an event or link attribute. Event and link attributes are not hashed
(few spans have them, but decoding them cost as much as the rest of the build): a condition
whose key is among the event or link keys of a file (``LakeFiles.nested_keys``) prunes nothing
in that file. Conditions no token can stand for (``error``, ``span.kind``, ``span.status``,
``scope.*``, JSON-looking texts, which a UDF decides) prune nothing. A row group is read only when every prunable condition may hold in it; the search then
runs its usual SQL over the rows read, so the index only changes speed, never results (a Bloom
filter has false positives, never false negatives).

Filters are built by DuckDB statements over the file (one scan per kind of token), for the row
groups a search's time slice meets, the first time a search meets them (0.5-1.5 s for an hour
of 416k spans, 1.5-4 s for all of a compacted 1M-span file, on this 2-core machine under load),
and kept in memory: 16 KB per 4,096-row group, 40 MB per 10M spans, at most
``MAX_CACHED_BYTES`` in all. Rows are hashed in blocks of ``BLOCK_ROWS``; a block straddling row
groups counts for each of them.

With a ``cache_dir`` (the store gives ``<data dir>/filters``, outside the lake's data path,
whose orphan sweep would take them), the filters of a file are also saved there after each
build, one ``.npz`` per span file named by a hash of its path and holding that path, and read
back the first time a process needs them: a restarted server does not build them again. A
saved filter is used only if its row counts and sizes match the file's footer; span files
never change once written, and :meth:`ValueIndex.sweep` removes the filters of files that are
gone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import duckdb
import numpy as np

from spanlake.model import PROMOTED_KEYS

log = logging.getLogger(__name__)

#: Rows per hashing block: row groups are mapped from blocks, so small blocks keep a value to the
#: row groups (or the two) holding it, whatever their sizes.
BLOCK_ROWS = 256
#: Bloom filter bits per row of a row group (within bounds), and probes per token.
BITS_PER_ROW = 32
PROBES = 3
MIN_BITS, MAX_BITS = 1 << 10, 1 << 17
#: Bytes of filters kept before those of the least recently used files are dropped.
MAX_CACHED_BYTES = 256 * 1024 * 1024

ATTR, RESOURCE, SCOPE = "a", "r", "s"


def tokens_select(source: str, columns: Sequence[str]) -> tuple[str, int]:
    """(SELECT of (block, token) for every token of the spans in ``source``, number of times
    ``source`` appears in it). ``source`` is a relation with a ``file_row_number`` column,
    read once per part so that each part decodes only its own columns; ``columns`` are the
    span columns present. Tokens repeat (setting a Bloom bit twice is harmless)."""
    b = f"file_row_number // {BLOCK_ROWS}"
    parts = []
    if "attributes" in columns:
        parts.append(f"SELECT {b} AS b, hash('{ATTR}', unnest(map_keys(attributes)), unnest(map_values(attributes))) AS h FROM {source}")
    promoted = [(key, col) for key, col in PROMOTED_KEYS.items() if col in columns]
    if promoted:
        hashes = ", ".join(f"hash('{ATTR}', '{key}', {col})" for key, col in promoted)
        present = ", ".join(f"{col} IS NOT NULL" for _, col in promoted)
        parts.append(f"SELECT b, h FROM (SELECT {b} AS b, unnest([{hashes}]) AS h, unnest([{present}]) AS present FROM {source}) WHERE present")
    ids = [(kind, col) for kind, col in ((RESOURCE, "resource_id"), (SCOPE, "scope_id")) if col in columns]
    if ids:
        hashes = ", ".join(f"hash('{kind}', {col})" for kind, col in ids)
        parts.append(f"SELECT DISTINCT b, h FROM (SELECT {b} AS b, unnest([{hashes}]) AS h FROM {source})")
    if not parts:
        return "SELECT 0::BIGINT AS b, 0::UBIGINT AS h WHERE FALSE", 0
    return "\nUNION ALL\n".join(parts), len(parts)


def attribute_tokens(cur: duckdb.DuckDBPyConnection, key: str, values: Sequence[str]) -> np.ndarray:
    """Tokens of an attribute ``key`` with one of the encoded ``values``."""
    if not values:
        return np.zeros(0, dtype=np.uint64)
    rows = cur.execute(
        f"SELECT hash('{ATTR}', ?::VARCHAR, v) FROM (SELECT unnest(?::VARCHAR[]) AS v)", [key, list(values)]
    ).fetchall()
    return np.array([r[0] for r in rows], dtype=np.uint64)


def id_tokens(cur: duckdb.DuckDBPyConnection, kind: str, ids: Sequence[int]) -> np.ndarray:
    """Tokens of resource (``kind`` = ``'r'``) or scope (``'s'``) ids."""
    if not ids:
        return np.zeros(0, dtype=np.uint64)
    rows = cur.execute(f"SELECT hash('{kind}', i) FROM (SELECT unnest(?::UBIGINT[]) AS i)", [list(ids)]).fetchall()
    return np.array([r[0] for r in rows], dtype=np.uint64)


def _probes(tokens: np.ndarray, bits: int) -> np.ndarray:
    """(len(tokens), PROBES) bit positions (``bits`` is a power of two): double hashing on the
    two 32-bit halves of the token, in 32-bit arithmetic."""
    t = tokens.astype(np.uint64, copy=False)
    h1 = (t & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    h2 = (t >> np.uint64(32)).astype(np.uint32) | np.uint32(1)
    mask = np.uint32(bits - 1)
    return np.stack([(h1 + np.uint32(i) * h2) & mask for i in range(PROBES)], axis=1)


@dataclass
class RowGroupFilters:
    """One Bloom filter of ``bits`` bits per row group (rows of ``packed``); ``built`` says
    which row groups' filters are complete (the others may hold some bits already)."""

    bits: int
    packed: np.ndarray  # uint8, (row groups, bits // 8)
    built: np.ndarray  # bool, (row groups,)

    @classmethod
    def empty(cls, rows: np.ndarray) -> "RowGroupFilters":
        # Sized by rows, not distinct tokens (counting those costs more than the rest of the
        # build): 4,096-row groups of ~12 attributes per span held ~7k distinct tokens in the
        # benchmark's data; 131,072 bits leave ~15% of the bits set, ~0.4% false positives per
        # token.
        n = len(rows)
        want = int(rows.max()) * BITS_PER_ROW if n else MIN_BITS
        bits = int(min(MAX_BITS, max(MIN_BITS, 1 << max(0, (want - 1).bit_length()))))
        return cls(bits, np.zeros((n, bits // 8), dtype=np.uint8), np.zeros(n, dtype=np.bool_))

    def may_hold_any(self, tokens: np.ndarray) -> np.ndarray:
        """Per row group, whether any of ``tokens`` may be in it (meaningful where built)."""
        n = self.packed.shape[0]
        if not len(tokens):
            return np.zeros(n, dtype=np.bool_)
        p = _probes(tokens, self.bits).astype(np.int64)  # (t, k)
        byte, mask = p >> 3, (np.uint8(0x80) >> (p & 7).astype(np.uint8))
        hit = (self.packed[:, byte] & mask[None, :, :]) != 0  # (rg, t, k)
        return hit.all(axis=2).any(axis=1)

    def add(self, blocks: np.ndarray, tokens: np.ndarray, offsets: np.ndarray) -> None:
        """Set the bits of (block, token) pairs in every row group each block meets."""
        if not len(blocks):
            return
        # Row groups meeting each block, [first, last], through a table over the blocks.
        b0 = int(blocks.min())
        starts = np.arange(b0, int(blocks.max()) + 1, dtype=np.int64) * BLOCK_ROWS
        lo_lut = np.searchsorted(offsets, starts, side="right") - 1
        hi_lut = np.searchsorted(offsets, starts + BLOCK_ROWS - 1, side="right") - 1
        lo_rg = lo_lut[blocks - b0]
        span = hi_lut[blocks - b0] - lo_rg
        g0, g1 = int(lo_rg.min()), int((lo_rg + span).max())
        bits = self.bits
        flat = np.zeros((g1 - g0 + 1) * bits, dtype=np.uint8)
        p = _probes(tokens, bits)
        wide = np.uint64 if len(flat) >= 2**32 else np.uint32
        for extra in range(int(span.max()) + 1):
            sel = slice(None) if extra == 0 else span >= extra
            base = ((lo_rg[sel] + extra - g0) * bits).astype(wide)[:, None]
            flat[(base + p[sel].astype(wide)).ravel()] = 1
        self.packed[g0 : g1 + 1] |= np.packbits(flat.reshape(g1 - g0 + 1, bits), axis=1)


class ValueIndex:
    """Row-group filters of span files, cached per (immutable) file and built row group by row
    group as searches need them: a search builds those of the row groups its time slice meets
    and not built yet (the first search over an hour of a 1M-span file pays for that hour, not
    for the file)."""

    def __init__(self, cache_dir: str | None = None, save: bool = True) -> None:
        self._lock = threading.Lock()
        self._filters: OrderedDict[str, RowGroupFilters] = OrderedDict()
        self._bytes = 0
        self.cache_dir = cache_dir
        self._save_enabled = save  # a read-only store reads saved filters but writes none
        self.built_runs = 0  # statements run to build filters (saved ones need none)

    def cached(self, path: str) -> RowGroupFilters | None:
        with self._lock:
            f = self._filters.get(path)
            if f is not None:
                self._filters.move_to_end(path)
            return f

    def filters(self, cur: duckdb.DuckDBPyConnection, path: str, info: Any, groups: np.ndarray | None = None) -> RowGroupFilters:
        """Filters of the span file at ``path`` (``info``: its ``lake_files.FileInfo``), built
        at least for the row groups ``groups`` (all when None)."""
        saved = None
        if self.cache_dir is not None and self.cached(path) is None:
            saved = self._load(path, info.rows)
        with self._lock:
            f = self._filters.get(path)
            if f is None:
                f = self._filters[path] = saved or RowGroupFilters.empty(info.rows)
                self._bytes += f.packed.nbytes
                while self._bytes > MAX_CACHED_BYTES and len(self._filters) > 1:
                    self._bytes -= self._filters.popitem(last=False)[1].packed.nbytes
            else:
                self._filters.move_to_end(path)
            wanted = np.arange(len(info.rows)) if groups is None else np.asarray(groups, dtype=np.int64)
            missing = wanted[~f.built[wanted]]
        if not len(missing):
            return f
        sql, n = tokens_select("(SELECT * FROM read_parquet(?, file_row_number = true) WHERE file_row_number BETWEEN ? AND ?)", info.names)
        # Contiguous runs of missing row groups, one statement each (DuckDB skips the row
        # groups outside a file_row_number range).
        runs = np.split(missing, np.nonzero(np.diff(missing) != 1)[0] + 1)
        for run in runs:
            first, last = int(run[0]), int(run[-1])
            lo, hi = int(info.offsets[first]), int(info.offsets[last] + info.rows[last] - 1)
            t = cur.execute(sql, [path, lo, hi] * n).to_arrow_table()
            self.built_runs += 1
            blocks = t.column("b").to_numpy().astype(np.int64)
            tokens = t.column("h").to_numpy().astype(np.uint64)
            with self._lock:
                f.add(blocks, tokens, info.offsets)
                f.built[first : last + 1] = True
        if self.cache_dir is not None and self._save_enabled:
            self._save(path, info.rows, f)
        return f

    # -- the on-disk copies ------------------------------------------------------------------

    def _saved_path(self, path: str) -> str:
        assert self.cache_dir is not None
        return os.path.join(self.cache_dir, hashlib.sha1(path.encode()).hexdigest()[:24] + ".npz")

    def _load(self, path: str, rows: np.ndarray) -> RowGroupFilters | None:
        try:
            with np.load(self._saved_path(path), allow_pickle=False) as z:
                if str(z["path"]) != path or not np.array_equal(z["rows"], rows):
                    return None
                f = RowGroupFilters(int(z["bits"]), z["packed"], z["built"])
        except FileNotFoundError:
            return None
        except Exception:  # a torn or foreign file: build the filters again
            log.warning("ignoring unreadable saved value filters of %s", path, exc_info=True)
            return None
        if f.packed.shape != (len(rows), f.bits // 8) or f.built.shape != (len(rows),):
            return None
        return f

    def _save(self, path: str, rows: np.ndarray, f: RowGroupFilters) -> None:
        """Write the filters of ``path`` next to the others, replacing an older copy at once
        (another process may be reading it)."""
        assert self.cache_dir is not None
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            with self._lock:
                packed, built = f.packed.copy(), f.built.copy()
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                np.savez(out, path=np.array(path), rows=rows, bits=np.array(f.bits), packed=packed, built=built)
            os.replace(tmp, self._saved_path(path))
        except OSError:
            log.warning("cannot save value filters of %s", path, exc_info=True)

    def sweep(self) -> int:
        """Remove the saved filters whose span file no longer exists; returns how many."""
        if self.cache_dir is None or not os.path.isdir(self.cache_dir):
            return 0
        removed = 0
        for name in os.listdir(self.cache_dir):
            saved = os.path.join(self.cache_dir, name)
            try:
                if name.endswith(".npz"):
                    with np.load(saved, allow_pickle=False) as z:
                        gone = not os.path.exists(str(z["path"]))
                else:  # a temporary file of a save that did not finish
                    gone = name.endswith(".tmp") and os.path.getmtime(saved) < time.time() - 3600
                if gone:
                    os.remove(saved)
                    removed += 1
            except FileNotFoundError:
                continue
            except Exception:
                log.warning("removing unreadable saved value filters %s", saved, exc_info=True)
                os.remove(saved)
                removed += 1
        return removed


@dataclass(frozen=True)
class Prunable:
    """What a span matching one tag condition must have: attribute ``key`` (in its map, its
    promoted column, or an event or link map) with one of the encoded ``values``, or one of
    the ``resource_ids`` / ``scope_ids`` (empty ``key``: only those). The filters hold no event
    or link attributes: see the module docstring."""

    key: str
    values: tuple[str, ...]
    resource_ids: tuple[int, ...]
    scope_ids: tuple[int, ...]

    def tokens(self, cur: duckdb.DuckDBPyConnection) -> np.ndarray:
        return np.concatenate([
            attribute_tokens(cur, self.key, self.values) if self.key else np.zeros(0, dtype=np.uint64),
            id_tokens(cur, RESOURCE, self.resource_ids),
            id_tokens(cur, SCOPE, self.scope_ids),
        ])


def prunable(key: str, text: str, side_ids: dict[tuple[str, str, str], tuple[int, ...]]) -> Prunable | None:
    """:class:`Prunable` of the tag condition (``key``, ``text``), or None when the condition
    prunes nothing (see the module docstring). ``side_ids`` are ``search_sql.Hints.side_ids``;
    a lookup missing from them makes the condition unprunable."""
    from spanlake.storage.ducklake.search_sql import tag_value_candidates

    if (key == "error" and text in ("true", "false")) or key in ("span.kind", "span.status", "scope.name", "scope.version"):
        return None
    if key.startswith("resource.") and len(key) > len("resource."):
        ids = side_ids.get(("lake.resources", key[len("resource.") :], text))
        return None if ids is None else Prunable("", (), ids, ())
    if text[:1] in ("[", "{"):
        return None  # arrays and key/value lists: their string form is decided by a UDF
    res, scopes = side_ids.get(("lake.resources", key, text)), side_ids.get(("lake.scopes", key, text))
    if res is None or scopes is None:
        return None
    return Prunable(key, tuple(tag_value_candidates(text)), res, scopes)
