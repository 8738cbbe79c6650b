"""Fixtures of the storage suite: one parameter per backend variant, each on fresh storage.

``site`` describes where a store lives (temporary folder, catalog) and opens stores there;
every store it opens is closed at teardown. The PostgreSQL variant starts (or reuses, from
``SPANLAKE_TEST_PG_DSN``) a server once per session and gives each site its own database. Its
absence skips those cases locally and fails the run in CI (``CI`` set).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from spanlake.storage.api import Store
from spanlake.storage.registry import open_store

from .capabilities import supports
from .postgres import PostgresUnavailable, new_database, server_dsn

#: Parameter id -> registry backend name.
VARIANTS: dict[str, str] = {
    "memory": "memory",
    "ducklake-sqlite": "ducklake",
    "ducklake-postgres": "ducklake",
}

#: Options the suite uses for DuckLake stores unless a test overrides them: short commit
#: interval for fast tests, and no background maintenance thread (tests call it directly).
TEST_DUCKLAKE_OPTIONS: dict[str, Any] = {
    "commit_interval_ms": 5,
    "maintenance_interval_s": 0,
    "memory_limit": "1GB",
    "threads": 2,
}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    gen = server_dsn()
    try:
        dsn = next(gen)
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(str(exc))
    yield dsn
    gen.close()


@dataclass
class Site:
    """Where the stores of one test live; ``open()`` opens one there."""

    variant: str
    root: Path
    catalog: str | None = None
    opened: list[Store] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return VARIANTS[self.variant]

    def supports(self, feature: str) -> bool:
        return supports(self.backend, feature)

    def ducklake_options(self, **overrides: Any) -> Any:
        from spanlake.storage.ducklake.store import DuckLakeOptions

        base = DuckLakeOptions(
            data_dir=str(self.root / "lake"),
            catalog=self.catalog,
            data_path=str(self.root / "lake-data") if self.catalog else None,
            **TEST_DUCKLAKE_OPTIONS,
        )
        return replace(base, **overrides)

    def open(self, **overrides: Any) -> Store:
        options = self.ducklake_options(**overrides) if self.backend == "ducklake" else None
        store = open_store(self.backend, options)
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


def make_site(request: pytest.FixtureRequest, variant: str, root: Path) -> Site:
    catalog = None
    if variant == "ducklake-postgres":
        catalog = "postgres:" + new_database(request.getfixturevalue("pg_server"))
    return Site(variant, root, catalog)


@pytest.fixture(params=list(VARIANTS))
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    s = make_site(request, request.param, tmp_path)
    yield s
    s.close_all()


@pytest.fixture
def store(site: Site) -> Store:
    return site.open()
