"""A real ``spanlake serve`` for the metrics tests, with a 1 s aggregation interval so derived
series show up quickly, and helpers to read them back."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.server import SpanlakeServer

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
FAST = ("--metrics-resolution", "1s", "--service-graph-wait", "2s", "--commit-interval-ms", "10")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeServer]:
    server = SpanlakeServer(tmp_path_factory.mktemp("metrics-data"), *FAST,
                            "--span-metrics-dimensions", "deployment.environment.name")
    with server:
        yield server


@pytest.fixture
def dump_log(request: pytest.FixtureRequest) -> Iterator[Callable[[SpanlakeServer], None]]:
    servers: list[SpanlakeServer] = []
    yield servers.append
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for s in servers:
            print("---- spanlake serve log ----\n" + s.log())


def scrape(server: SpanlakeServer, openmetrics: bool = False) -> dict:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    r = httpx.get(server.http_url + "/metrics", headers=headers, timeout=30)
    r.raise_for_status()
    parser = parse_openmetrics if openmetrics else parse_text
    return {f.name: f for f in parser(r.text)}


def samples(families: dict, family: str, name: str | None = None, **labels: str) -> dict[tuple, float]:
    """Values of the samples of ``family`` whose labels include ``labels``, keyed by sorted labels."""
    f = families.get(family)
    if f is None:
        return {}
    return {tuple(sorted(s.labels.items())): s.value for s in f.samples
            if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items())}
