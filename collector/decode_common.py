"""What the OTLP trace and log decoders share: the request walk, resources and scopes,
validation helpers and the partial-success message.

Both decoders parse a request with a *lazy* copy of the signal's schema
(:func:`lazy_message_class`), in which attributes, resources and scopes stay raw bytes, then
walk it the same way (:func:`gather`): every ``Resource*`` gives a resource row, every
non-empty ``Scope*`` a :class:`ScopeGroup` of items sharing a resource and a scope, and the items
of the whole request are read column-wise in one list. Resources and scopes are decoded once per
distinct serialized form (:func:`resource_row`, :func:`scope_row`), so spans and logs of one
service get the same rows and fingerprints, and the store keeps each once.

Items found invalid are rejected one by one: a decoder collects ``{item index: problem}``,
:func:`add_positional_errors` adds the problems found before decoding (the OTLP/JSON ids that
were not hex), :func:`drop_rejected` removes the items from the batch and
:func:`rejection_message` names the first few by their position, e.g.
``2 spans rejected: resourceSpans[0].scopeSpans[1].spans[4].traceId is 5 bytes, expected 16``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from spanlake.collector import span_columns as col
from spanlake.model import MISSING_SERVICE_NAME, encode_proto_any_value, resource_fingerprint, scope_fingerprint, string_form

__all__ = [
    "DecodeError",
    "ResourceRow",
    "ScopeGroup",
    "ScopeRow",
    "add_positional_errors",
    "drop_rejected",
    "flatten",
    "gather",
    "group_columns",
    "id_problem",
    "lazy_message_class",
    "rejection_message",
    "remember",
    "resource_row",
    "scope_row",
    "side_tables",
]

#: Position of an item in a request: (resource index, scope index, item index).
Position = tuple[int, int, int]

_CACHE_MAX = 1024


class DecodeError(ValueError):
    """The request cannot be decoded at all (not OTLP, truncated, malformed)."""


# ---------------------------------------------------------------------------------------------
# The lazy schema
# ---------------------------------------------------------------------------------------------


def lazy_message_class(file_module: Any, raw_fields: Iterable[tuple[str, str]], root: str) -> Any:
    """The message class ``root`` of a copy of ``file_module``'s schema in which each
    ``(message, field)`` of ``raw_fields`` is ``bytes`` (``"Span.Event"`` names a nested
    message). The wire format is the same, so upb parses requests without building those
    sub-messages; they are decoded later, in bulk or once per distinct value."""
    pool = descriptor_pool.DescriptorPool()
    for module in (common_pb2, resource_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto.FromString(file_module.DESCRIPTOR.serialized_pb)
    for message_path, name in raw_fields:
        outer, *inner = message_path.split(".")
        (msg,) = [m for m in fdp.message_type if m.name == outer]
        for part in inner:
            (msg,) = [m for m in msg.nested_type if m.name == part]
        (f,) = [f for f in msg.field if f.name == name]
        f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        f.ClearField("type_name")
    pool.AddSerializedFile(fdp.SerializeToString())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{fdp.package}.{root}"))


_all_items = itemgetter(slice(None))


def flatten(containers: Any) -> list[Any]:
    """The items of many repeated fields in one list."""
    # Slicing a upb repeated container to a list is about 3x faster than iterating it.
    return list(chain.from_iterable(map(_all_items, filter(None, containers))))


# ---------------------------------------------------------------------------------------------
# Resources and scopes (decoded once per distinct serialized form)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResourceRow:
    resource_id: int
    service_name: str
    attributes: list[tuple[str, str]]
    dropped_attributes_count: int
    schema_url: str


@dataclass(frozen=True, slots=True)
class ScopeRow:
    scope_id: int
    name: str
    version: str
    attributes: list[tuple[str, str]]
    dropped_attributes_count: int
    schema_url: str


_resource_cache: dict[tuple[bytes, str], ResourceRow] = {}
_scope_cache: dict[tuple[bytes, str], ScopeRow] = {}
_table_cache: dict[tuple[int, ...], pa.Table] = {}


def remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """``cache[key] = value`` in a cache that is emptied when full; returns ``value``."""
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _encoded_attributes(key_values: Any) -> list[tuple[str, str]]:
    return [(kv.key, encode_proto_any_value(kv.value)) for kv in key_values]


def resource_row(raw: bytes, schema_url: str) -> ResourceRow:
    """The row of a serialized ``Resource`` with its ``schema_url``."""
    row = _resource_cache.get((raw, schema_url))
    if row is None:
        res = Resource.FromString(raw)
        attrs = _encoded_attributes(res.attributes)
        # The last one wins if the key repeats (invalid OTLP), as in the read model's dict.
        names = [v for k, v in attrs if k == "service.name"]
        service = string_form(names[-1]) if names else MISSING_SERVICE_NAME
        dropped = res.dropped_attributes_count
        row = ResourceRow(resource_fingerprint(attrs, dropped, schema_url), service, attrs, dropped, schema_url)
        remember(_resource_cache, (raw, schema_url), row)
    return row


def scope_row(raw: bytes, schema_url: str) -> ScopeRow:
    """The row of a serialized ``InstrumentationScope`` with its ``schema_url``."""
    row = _scope_cache.get((raw, schema_url))
    if row is None:
        scope = InstrumentationScope.FromString(raw)
        attrs = _encoded_attributes(scope.attributes)
        dropped = scope.dropped_attributes_count
        fp = scope_fingerprint(scope.name, scope.version, attrs, dropped, schema_url)
        row = ScopeRow(fp, scope.name, scope.version, attrs, dropped, schema_url)
        remember(_scope_cache, (raw, schema_url), row)
    return row


# ---------------------------------------------------------------------------------------------
# The request walk
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ScopeGroup:
    """The items (spans, log records) of one ``Scope*``: their resource and scope, and where
    they are in the request."""

    resource: ResourceRow
    scope: ScopeRow
    position: tuple[int, int]
    size: int


def gather(
    resource_items: Any, scopes_of: Callable[[Any], Any], items_of: Callable[[Any], Any]
) -> tuple[list[Any], list[ScopeGroup]]:
    """All items of a request in one list, and their groups in order.

    ``resource_items`` are the request's ``Resource*`` messages (each with ``resource`` and
    ``schema_url``), ``scopes_of`` gives a resource's ``Scope*`` messages (each with ``scope``
    and ``schema_url``), ``items_of`` a scope's items. Empty scopes make no group.
    """
    items: list[Any] = []
    groups: list[ScopeGroup] = []
    for r, res in enumerate(resource_items):
        resource = resource_row(res.resource, res.schema_url)
        for s, sc in enumerate(scopes_of(res)):
            scope_items = items_of(sc)
            if scope_items:
                items.extend(scope_items)
                groups.append(ScopeGroup(resource, scope_row(sc.scope, sc.schema_url), (r, s), len(scope_items)))
    return items, groups


def group_columns(groups: list[ScopeGroup]) -> tuple[np.ndarray, list[pa.Array]]:
    """The group index of every item, and the per-item columns copied from the resource and
    scope: ``service_name``, ``resource_id``, ``scope_id``, ``scope_name``, ``scope_version``."""
    sizes = [g.size for g in groups]
    group_of = np.repeat(np.arange(len(groups)), sizes)
    group_index = pa.array(group_of)

    def per_group(values: list[Any], type_: pa.DataType) -> pa.Array:
        return col.repeat_per_group(values, type_, sizes, group_index)

    return group_of, [
        per_group([g.resource.service_name for g in groups], pa.string()),
        per_group([g.resource.resource_id for g in groups], pa.uint64()),
        per_group([g.scope.scope_id for g in groups], pa.uint64()),
        per_group([g.scope.name for g in groups], pa.string()),
        per_group([g.scope.version for g in groups], pa.string()),
    ]


def _table(rows: list[Any], ids: tuple[int, ...], build: Any) -> pa.Table:
    table = _table_cache.get(ids)
    if table is None:
        table = remember(_table_cache, ids, build(rows))
    return table


def side_tables(groups: list[ScopeGroup]) -> tuple[pa.Table, pa.Table]:
    """Resource and scope tables (one row per distinct id) of the groups' items."""
    resources = list({g.resource.resource_id: g.resource for g in groups}.values())
    scopes = list({g.scope.scope_id: g.scope for g in groups}.values())
    return (
        _table(resources, tuple(r.resource_id for r in resources), col.resource_table),
        _table(scopes, tuple(s.scope_id for s in scopes), col.scope_table),
    )


# ---------------------------------------------------------------------------------------------
# Validation and partial success
# ---------------------------------------------------------------------------------------------


def id_problem(field: str, value: bytes, size: int, optional: bool = False, allow_zero: bool = False) -> str | None:
    """What is wrong with an id of ``size`` bytes, or None. ``optional``: empty is fine;
    ``allow_zero``: all zeros is fine (the log data model's "not correlated")."""
    if optional and not value:
        return None
    if len(value) != size:
        expected = f"{size} or empty" if optional else str(size)
        return f"{field} is {len(value)} bytes, expected {expected}"
    if not allow_zero and value == bytes(size):
        return f"{field} is all zeros"
    return None


def _group_starts(groups: list[ScopeGroup]) -> list[int]:
    return np.concatenate(([0], np.cumsum([g.size for g in groups]))).astype(int).tolist()


def add_positional_errors(errors: dict[Position, str], groups: list[ScopeGroup], problems: dict[int, str]) -> None:
    """Add problems known by position (they win over the ones found by index); positions
    that are not in the request are ignored."""
    if not errors:
        return
    starts = _group_starts(groups)
    where = {g.position: (starts[i], g.size) for i, g in enumerate(groups)}
    for (r, s, p), message in errors.items():
        start, count = where.get((r, s), (0, 0))
        if 0 <= p < count:
            problems[start + p] = message


def drop_rejected(
    table: pa.Table, problems: dict[int, str], groups: list[ScopeGroup], group_of: np.ndarray
) -> tuple[pa.Table, list[ScopeGroup]]:
    """``table`` without the rejected items, and the groups that still have items."""
    if not problems:
        return table, groups
    keep = np.ones(table.num_rows, bool)
    keep[list(problems)] = False
    return table.filter(pa.array(keep)), [groups[i] for i in np.unique(group_of[keep]).tolist()]


def rejection_message(
    problems: dict[int, str], groups: list[ScopeGroup], path: tuple[str, str, str], nouns: tuple[str, str],
    limit: int = 5,
) -> str:
    """``"<n> <nouns> rejected: <path of item>.<problem>; ..."``, naming the first ``limit``.

    ``path`` names the request's levels (``("resourceSpans", "scopeSpans", "spans")``),
    ``nouns`` the item in the singular and plural."""
    if not problems:
        return ""
    starts = _group_starts(groups)
    parts = []
    for i in sorted(problems)[:limit]:
        g = int(np.searchsorted(starts, i, side="right")) - 1
        (r, s), p = groups[g].position, i - starts[g]
        parts.append(f"{path[0]}[{r}].{path[1]}[{s}].{path[2]}[{p}].{problems[i]}")
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    noun = nouns[0] if len(problems) == 1 else nouns[1]
    return f"{len(problems)} {noun} rejected: " + "; ".join(parts) + more
