"""Browser-test fixtures: one real ``spanlake serve`` with demo and fixture traffic, one Chromium.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright; no browser is ever downloaded.
Without it (or without the playwright package) the tests skip, except under CI (``CI`` set),
where they fail: CI must run them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.server import SpanlakeServer
from tests.ui.otlp_fixtures import (
    FIXTURE_TRACE,
    LINKED_TRACE,
    fixture_specs,
    fixture_trace_requests,
    large_trace_requests,
    linked_specs,
    send,
    wait_for_trace,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
LARGE_TRACE = bytes.fromhex("b16b16000000000000000000000000aa")
LARGE_TRACE_SPANS = 5000
DEMO_REQUESTS = 40


def _require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -e '.[test]')")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeServer]:
    """A server holding demo traffic, the fixture traces and a 5,000-span trace."""
    _require_browser()
    from spanlake.demo import DemoTraffic

    server = SpanlakeServer(tmp_path_factory.mktemp("ui-data"))
    with server:
        send(server.otlp_http, fixture_trace_requests())
        send(server.otlp_http, large_trace_requests(LARGE_TRACE, LARGE_TRACE_SPANS))
        demo = DemoTraffic(server.otlp_grpc, seed=11)
        try:
            demo.run_for(DEMO_REQUESTS)
        finally:
            demo.stop()
        wait_for_trace(server.http_url, FIXTURE_TRACE, len(fixture_specs()))
        wait_for_trace(server.http_url, LINKED_TRACE, len(linked_specs()))
        wait_for_trace(server.http_url, LARGE_TRACE, LARGE_TRACE_SPANS)
        _wait_for_demo(server.http_url, demo.traces_created)
        yield server


def _wait_for_demo(http_url: str, traces: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    found = 0
    while time.monotonic() < deadline:
        r = httpx.get(f"{http_url}/api/spanlake/v1/traces",
                      params={"lookback": "1h", "limit": 1500}, timeout=30)
        found = sum(t["rootService"] not in ("ui-shop", "ui-fraud", "svc-gateway") for t in r.json()["traces"])
        if found >= traces:
            return
        time.sleep(0.3)
    raise TimeoutError(f"only {found} of {traces} demo traces arrived")


@pytest.fixture(scope="session")
def browser(ui_server: SpanlakeServer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


class UI:
    """A page at 1280x800 on the test server, failing on script errors and blank renders."""

    def __init__(self, page, base_url: str, screenshot_dir: Path) -> None:
        self.page = page
        self.base = base_url
        self.shots = screenshot_dir
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("console", lambda m: self.errors.append(f"console error: {m.text}") if m.type == "error" else None)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def assert_rendered(self, min_text: int = 40) -> None:
        """The page shows real content: the app root is tall, has text, and no error box."""
        info = self.page.evaluate("""() => {
            const app = document.getElementById('app');
            return {text: app.innerText.trim().length, height: app.getBoundingClientRect().height,
                    nodes: app.querySelectorAll('*').length,
                    errors: [...app.querySelectorAll('.message.error')].map(e => e.innerText)};
        }""")
        assert info["errors"] == [], info["errors"]
        assert info["text"] >= min_text and info["nodes"] >= 10 and info["height"] >= 200, f"blank page: {info}"

    def screenshot(self, name: str) -> Path:
        self.assert_rendered()
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000, f"{name}: screenshot looks empty"
        return path


@pytest.fixture
def ui(browser, ui_server: SpanlakeServer, screenshot_dir: Path) -> Iterator[UI]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    helper = UI(page, ui_server.http_url, screenshot_dir)
    yield helper
    context.close()
    assert helper.errors == [], helper.errors
