"""Backend registry: a backend name maps to a factory that takes that backend's typed options.

``open_store("ducklake", DuckLakeOptions(...))`` or ``open_store("memory")``. An unknown name
raises ValueError naming the valid ones, so a misconfigured server stops at startup.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from spanlake.storage.api import Store

Factory = Callable[[Any], Store]


def _open_ducklake(options: Any) -> Store:
    from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

    if isinstance(options, Mapping):
        options = DuckLakeOptions(**options)
    if not isinstance(options, DuckLakeOptions):
        raise TypeError(f"the ducklake backend takes DuckLakeOptions, not {type(options).__name__}")
    return DuckLakeStore(options)


def _open_memory(options: Any) -> Store:
    from spanlake.storage.memory import MemoryStore

    return MemoryStore(options)


BACKENDS: dict[str, Factory] = {
    "ducklake": _open_ducklake,
    "memory": _open_memory,
}


def open_store(name: str, options: Any = None) -> Store:
    """Open the store of backend ``name`` with its options (a dataclass or a mapping)."""
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown storage backend {name!r}; valid backends: {', '.join(sorted(BACKENDS))}") from None
    return factory(options)
