"""Fixtures that start real ``spanlake serve`` processes and open their stores."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.server import SpanlakeServer

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _dump_on_failure(request: pytest.FixtureRequest, server: SpanlakeServer) -> None:
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print("---- spanlake serve log ----\n" + server.log())


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeServer]:
    """One server for read-mostly tests (each test uses its own service names)."""
    server = SpanlakeServer(tmp_path_factory.mktemp("shared-data"))
    with server:
        yield server
        print("---- shared spanlake serve log (tail) ----\n" + server.log())


@pytest.fixture
def fresh_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SpanlakeServer]:
    server = SpanlakeServer(tmp_path / "data")
    with server:
        yield server
        _dump_on_failure(request, server)


@pytest.fixture
def conformance() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.fail(f"conformance data not found at {CONFORMANCE}")
    return CONFORMANCE


def open_reader(data_dir: Path):
    """Open the store a server writes to, from the test process (DuckLake allows it)."""
    from spanlake.storage.ducklake.store import DuckLakeOptions, DuckLakeStore

    return DuckLakeStore(DuckLakeOptions(data_dir=str(data_dir), maintenance_interval_s=0))
