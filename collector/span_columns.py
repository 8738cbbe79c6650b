"""Arrow columns of a span batch, built once per request from Python column lists.

Helpers of :mod:`.decode_traces`. Each takes a whole column (a tuple or list with one value
per span, event or link) and returns an Arrow array of the type ``spanlake.model`` fixes.
Columns that are usually constant (empty trace states, zero dropped counts) take a shortcut.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.model import (
    ATTR_MAP,
    EVENT_TYPE,
    LINK_TYPE,
    PROMOTED_ATTRIBUTES,
    RESOURCE_SCHEMA,
    SCOPE_SCHEMA,
)

_PROMOTED_COLUMNS = list(PROMOTED_ATTRIBUTES)
_PROMOTED_INDEX = {key: i for i, key in enumerate(PROMOTED_ATTRIBUTES.values())}
_PROMOTED_KEY_SET = pa.array(list(PROMOTED_ATTRIBUTES.values()), pa.string())
_EMPTY_EVENTS = pa.array([], EVENT_TYPE)
_EMPTY_LINKS = pa.array([], LINK_TYPE)
_EMPTY_STRING = pa.scalar("", pa.string())
_ZERO_UINT32 = pa.scalar(0, pa.uint32())

#: Below this many attributes, promotion runs in Python: cheaper than a dozen Arrow kernels.
_FEW = 300


def offsets(counts: np.ndarray) -> pa.Array:
    """int32 list offsets of per-row element counts."""
    out = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=out[1:])
    return pa.array(out)


def map_array(counts: np.ndarray, keys: pa.Array, values: pa.Array) -> pa.Array:
    return pa.MapArray.from_arrays(offsets(counts), keys, values, type=ATTR_MAP)


def strings(values: Sequence[str]) -> pa.Array:
    if not any(values):
        return pa.repeat(_EMPTY_STRING, len(values))
    return pa.array(values, pa.string())


def uint32s(values: Sequence[int]) -> pa.Array:
    if not any(values):
        return pa.repeat(_ZERO_UINT32, len(values))
    return pa.array(np.fromiter(values, np.uint32, len(values)))


def int64_times(values: Sequence[int]) -> pa.Array:
    """fixed64 nanoseconds as int64 (values past 2**63 wrap, as the schema can only hold int64)."""
    return pa.array(np.fromiter(values, np.uint64, len(values)).view(np.int64))


def small_enums(values: Sequence[int]) -> pa.Array:
    """uint8 column; out-of-range numbers (their spans are rejected) become 0."""
    arr = np.fromiter(values, np.int64, len(values))
    bad = (arr < 0) | (arr > 255)
    if bad.any():
        arr[bad] = 0
    return pa.array(arr.astype(np.uint8))


def nullable_ids(values: Sequence[bytes]) -> pa.Array:
    """Binary column in which empty values (no parent span) are null."""
    return pa.array([v or None for v in values], pa.binary())


def repeat_per_group(values: list[Any], type_: pa.DataType, counts: list[int], group_index: pa.Array) -> pa.Array:
    """A per-span column holding the value of the span's resource or scope group."""
    if len(values) == 1:
        return pa.repeat(pa.scalar(values[0], type_), counts[0])
    return pa.array(values, type_).take(group_index)


def span_attributes(keys: pa.Array, values: pa.Array, counts: np.ndarray) -> tuple[pa.Array, dict[str, pa.Array]]:
    """The attribute map without the promoted keys, and one column per promoted key.

    A key repeated within a span (invalid OTLP) keeps its last value in a promoted column.
    """
    if len(keys) < _FEW:
        return _span_attributes_few(keys, values, counts)
    n = len(counts)
    index = pc.index_in(keys, value_set=_PROMOTED_KEY_SET)
    if index.null_count == len(index):
        return map_array(counts, keys, values), {col: pa.nulls(n, pa.string()) for col in _PROMOTED_COLUMNS}
    promoted_index = pc.fill_null(index, -1).to_numpy()
    span_of = np.repeat(np.arange(n), counts)
    found = np.flatnonzero(promoted_index >= 0)
    # Row c of ``take`` holds, per span, the position of the value of promoted column c.
    take = np.full((len(_PROMOTED_COLUMNS), n), -1, np.int64)
    take[promoted_index[found], span_of[found]] = found
    flat_take = take.ravel()
    columns = values.take(pa.array(flat_take, mask=flat_take < 0))
    keep = promoted_index < 0
    kept = pa.array(keep)
    attr_map = map_array(np.bincount(span_of[keep], minlength=n), keys.filter(kept), values.filter(kept))
    return attr_map, _split(columns, n)


def _span_attributes_few(
    keys: pa.Array, values: pa.Array, counts: np.ndarray
) -> tuple[pa.Array, dict[str, pa.Array]]:
    n = len(counts)
    columns: list[str | None] = [None] * (len(_PROMOTED_COLUMNS) * n)
    kept_keys, kept_values, kept_counts = [], [], [0] * n
    for span, key, value in zip(np.repeat(np.arange(n), counts).tolist(), keys.to_pylist(), values.to_pylist()):
        c = _PROMOTED_INDEX.get(key)
        if c is None:
            kept_keys.append(key)
            kept_values.append(value)
            kept_counts[span] += 1
        else:
            columns[c * n + span] = value
    attr_map = map_array(np.array(kept_counts), pa.array(kept_keys, pa.string()), pa.array(kept_values, pa.string()))
    return attr_map, _split(pa.array(columns, pa.string()), n)


def _split(columns: pa.Array, n: int) -> dict[str, pa.Array]:
    """The promoted columns, stored one after the other in ``columns``."""
    return {col: columns.slice(c * n, n) for c, col in enumerate(_PROMOTED_COLUMNS)}


def events(
    cols: tuple[tuple[Any, ...], ...], counts: np.ndarray, attr_counts: np.ndarray, keys: pa.Array, values: pa.Array
) -> pa.Array:
    """``list<EVENT_TYPE>`` from event columns (time, name, attributes, dropped)."""
    if not cols:
        return no_events(counts)
    times, names, _, dropped = cols
    return event_lists(
        counts, int64_times(times), pa.array(names, pa.string()), map_array(attr_counts, keys, values), uint32s(dropped)
    )


def no_events(counts: np.ndarray) -> pa.Array:
    """``list<EVENT_TYPE>`` of empty lists (``counts`` is all zeros)."""
    return pa.ListArray.from_arrays(offsets(counts), _EMPTY_EVENTS, type=pa.list_(EVENT_TYPE))


def event_lists(counts: np.ndarray, *fields: pa.Array) -> pa.Array:
    """``list<EVENT_TYPE>`` of ``counts`` events per span from the event fields' arrays."""
    items = pa.StructArray.from_arrays(list(fields), fields=list(EVENT_TYPE))
    return pa.ListArray.from_arrays(offsets(counts), items, type=pa.list_(EVENT_TYPE))


def links(
    cols: tuple[tuple[Any, ...], ...], counts: np.ndarray, attr_counts: np.ndarray, keys: pa.Array, values: pa.Array
) -> pa.Array:
    """``list<LINK_TYPE>`` from link columns (trace id, span id, trace state, flags, attributes, dropped)."""
    if not cols:
        return no_links(counts)
    trace_ids, span_ids, trace_states, flags, _, dropped = cols
    return link_lists(
        counts,
        pa.array(trace_ids, pa.binary()),
        pa.array(span_ids, pa.binary()),
        strings(trace_states),
        uint32s(flags),
        map_array(attr_counts, keys, values),
        uint32s(dropped),
    )


def no_links(counts: np.ndarray) -> pa.Array:
    """``list<LINK_TYPE>`` of empty lists (``counts`` is all zeros)."""
    return pa.ListArray.from_arrays(offsets(counts), _EMPTY_LINKS, type=pa.list_(LINK_TYPE))


def link_lists(counts: np.ndarray, *fields: pa.Array) -> pa.Array:
    """``list<LINK_TYPE>`` of ``counts`` links per span from the link fields' arrays."""
    items = pa.StructArray.from_arrays(list(fields), fields=list(LINK_TYPE))
    return pa.ListArray.from_arrays(offsets(counts), items, type=pa.list_(LINK_TYPE))


def resource_table(rows: list[Any]) -> pa.Table:
    """RESOURCE_SCHEMA table of resource rows (objects with the schema's fields)."""
    return pa.Table.from_arrays(
        [
            pa.array([r.resource_id for r in rows], pa.uint64()),
            pa.array([r.service_name for r in rows], pa.string()),
            pa.array([r.attributes for r in rows], ATTR_MAP),
            pa.array([r.dropped_attributes_count for r in rows], pa.uint32()),
            pa.array([r.schema_url for r in rows], pa.string()),
        ],
        schema=RESOURCE_SCHEMA,
    )


def scope_table(rows: list[Any]) -> pa.Table:
    """SCOPE_SCHEMA table of scope rows (objects with the schema's fields)."""
    return pa.Table.from_arrays(
        [
            pa.array([s.scope_id for s in rows], pa.uint64()),
            pa.array([s.name for s in rows], pa.string()),
            pa.array([s.version for s in rows], pa.string()),
            pa.array([s.attributes for s in rows], ATTR_MAP),
            pa.array([s.dropped_attributes_count for s in rows], pa.uint32()),
            pa.array([s.schema_url for s in rows], pa.string()),
        ],
        schema=SCOPE_SCHEMA,
    )
