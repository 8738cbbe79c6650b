"""The web UI in Chromium against a real ``spanlake serve``: every page, checked against the API."""

from __future__ import annotations

import json
import re

import httpx

from tests.ui.conftest import LARGE_TRACE, LARGE_TRACE_SPANS, UI
from tests.ui.otlp_fixtures import FIXTURE_TRACE, LINKED_TRACE, fixture_specs, sid

FIXTURE = FIXTURE_TRACE.hex()
V1 = "/api/spanlake/v1"


def api(ui: UI, path: str, **params) -> dict:
    r = httpx.get(ui.base + V1 + path, params=params, timeout=60)
    r.raise_for_status()
    return r.json()


def rows(ui: UI) -> list[str]:
    """Span ids of the waterfall rows in the DOM, top to bottom."""
    return ui.page.evaluate("""async () => {
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));  // rows render per frame
        return [...document.querySelectorAll('.wf-row:not([hidden])')]
            .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
            .map(r => r.dataset.spanId);
    }""")


def open_fixture(ui: UI, query: str = "", ready: str = ".wf-row[data-span-id]") -> None:
    ui.goto(f"/trace/{FIXTURE}{query}")
    ui.page.wait_for_selector(ready)


# --- search ------------------------------------------------------------------------------------


def test_search_shows_results_and_opens_a_trace(ui: UI) -> None:
    ui.goto("/search?service=ui-shop&lookback=1h")
    ui.page.wait_for_selector(".result")
    assert ui.page.locator(".result").count() == 1
    result = ui.page.locator(f'.result[data-trace-id="{FIXTURE}"]')
    assert "ui-shop: POST /checkout" in result.inner_text()
    assert "8 spans" in result.inner_text() and "1 error" in result.inner_text()
    badges = result.locator(".badge").all_inner_texts()
    assert any(b.startswith("ui-pay 2") for b in badges) and any("ui-shop 4" in b for b in badges)
    assert ui.page.locator(f'.scatter circle[data-trace-id="{FIXTURE}"]').count() == 1
    ui.screenshot("search-service")
    result.locator(".result-title").click()
    ui.page.wait_for_url(re.compile(f"/trace/{FIXTURE}"))
    ui.page.wait_for_selector(".wf-row[data-span-id]")
    assert "POST /checkout" in ui.page.locator(".trace-title").inner_text()


def test_search_all_services_sorts_and_keeps_the_query_in_the_url(ui: UI) -> None:
    ui.goto("/search?lookback=1h&limit=50")
    ui.page.wait_for_selector(".result")
    ui.screenshot("search-all")
    ui.page.select_option("select[name=sort]", "slowest")
    durations = ui.page.evaluate("""() => [...document.querySelectorAll('.result')].map(r => r.dataset.traceId)""")
    summaries = {t["traceId"]: t["durationNs"] for t in api(ui, "/traces", lookback="1h", limit=50)["traces"]}
    shown = [summaries[t] for t in durations]
    assert shown == sorted(shown, reverse=True) and len(shown) == len(summaries)
    assert "sort=slowest" in ui.page.url and "limit=50" in ui.page.url
    # The query survives a reload: form and sort order come back from the URL.
    ui.page.fill("input[name=tags]", "user.tier=gold")
    ui.page.click("button:has-text('Find traces')")
    ui.page.wait_for_url(re.compile("tags=user.tier"))
    ui.page.wait_for_selector(".result")
    ui.page.reload()
    ui.page.wait_for_selector(".result")
    assert ui.page.input_value("input[name=tags]") == "user.tier=gold"
    assert [r for r in ui.page.evaluate("() => [...document.querySelectorAll('.result')].map(r => r.dataset.traceId)")] == [FIXTURE]


def test_search_empty_state_and_form_errors(ui: UI) -> None:
    ui.goto("/search?service=ui-shop&minDuration=10s&lookback=1h")
    ui.page.wait_for_selector(".empty")
    assert "No traces in this range" in ui.page.inner_text(".empty")
    ui.screenshot("search-empty")
    ui.page.fill("input[name=tags]", "just-a-word")
    ui.page.click("button:has-text('Find traces')")
    assert "key=value" in ui.page.inner_text(".form-error")


# --- trace page --------------------------------------------------------------------------------


def test_trace_header_and_waterfall(ui: UI) -> None:
    open_fixture(ui)
    header = ui.page.inner_text(".trace-header")
    for text in ("ui-shop", "POST /checkout", FIXTURE, "120ms", "Spans\n8", "Depth\n4", "Errors\n1"):
        assert text.lower() in header.lower(), text
    view = api(ui, f"/traces/{FIXTURE}")
    assert rows(ui) == view["spans"]["spanId"]
    assert ui.page.locator(".wf-ticks span").count() == 5
    error_row = ui.page.locator(f'.wf-row[data-span-id="{sid(7).hex()}"]')
    assert "error" in error_row.get_attribute("class") and error_row.locator(".wf-err").count() == 1
    assert error_row.locator(".wf-ev").count() == 2 and error_row.locator(".wf-ev.err").count() == 1
    assert error_row.locator(".wf-self").count() >= 1  # self time drawn inside the bar
    assert "self" in error_row.locator(".wf-dur").inner_text()
    ui.screenshot("trace-timeline")



def test_trace_page_requests_the_trace_once_and_first(ui: UI) -> None:
    # The server puts a preload of the trace at the top of <head>; the page's own fetch must
    # take that response, not ask again, and nothing may queue ahead of it.
    requested: list[str] = []
    ui.page.on("request", lambda r: requested.append(r.url.removeprefix(ui.base)))
    open_fixture(ui)
    html = httpx.get(f"{ui.base}/trace/{FIXTURE.upper()}").text
    assert f'<link rel="preload" href="{V1}/traces/{FIXTURE}" as="fetch"' in html
    assert requested.count(f"{V1}/traces/{FIXTURE}") == 1
    assert requested[:2] == [f"/trace/{FIXTURE}", f"{V1}/traces/{FIXTURE}"]
    # A malformed id gets the plain page, which reports the error itself.
    assert 'rel="preload"' not in httpx.get(f"{ui.base}/trace/not-a-trace-id").text

def test_minimap_zoom_window(ui: UI) -> None:
    open_fixture(ui)
    box = ui.page.locator(".minimap").bounding_box()
    y = box["y"] + box["height"] / 2
    ui.page.mouse.move(box["x"] + box["width"] * 0.5, y)
    ui.page.mouse.down()
    ui.page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
    ui.page.mouse.up()
    ticks = ui.page.locator(".wf-ticks span").all_inner_texts()
    assert ticks[0] == "60.0ms" and ticks[-1] == "90.0ms", ticks
    assert ui.page.locator(".mm-window").is_visible()
    # Drag the window itself to the left by a quarter.
    win = ui.page.locator(".mm-window").bounding_box()
    ui.page.mouse.move(win["x"] + win["width"] / 2, y)
    ui.page.mouse.down()
    ui.page.mouse.move(win["x"] + win["width"] / 2 - box["width"] * 0.25, y, steps=5)
    ui.page.mouse.up()
    ticks = ui.page.locator(".wf-ticks span").all_inner_texts()
    assert ticks[0] == "30.0ms" and ticks[-1] == "60.0ms", ticks
    ui.page.mouse.dblclick(box["x"] + box["width"] * 0.9, y)
    assert ui.page.locator(".wf-ticks span").all_inner_texts()[-1] == "120ms"
    assert ui.page.locator(".mm-window").is_hidden()


def test_expand_and_collapse(ui: UI) -> None:
    open_fixture(ui)
    ui.page.click("button:has-text('Collapse all')")
    assert rows(ui) == [sid(1).hex()]
    ui.page.click("button:has-text('Expand all')")
    assert len(rows(ui)) == 8
    # One subtree: collapsing "reserve stock" hides its two descendants.
    ui.page.click(f'.wf-row[data-span-id="{sid(2).hex()}"] .wf-toggle')
    assert sid(3).hex() not in rows(ui) and sid(4).hex() not in rows(ui) and len(rows(ui)) == 6
    assert "+2" in ui.page.inner_text(f'.wf-row[data-span-id="{sid(2).hex()}"] .wf-count')
    ui.page.click(f'.wf-row[data-span-id="{sid(2).hex()}"] .wf-toggle')
    assert len(rows(ui)) == 8
    # By level: two levels show the root and its four children.
    ui.page.select_option("select[aria-label='Expand to level']", "2")
    assert rows(ui) == [sid(i).hex() for i in (1, 2, 5, 6)]
    ui.page.keyboard.press("[")
    assert len(rows(ui)) == 8


def test_span_detail_shows_what_the_span_carried(ui: UI) -> None:
    open_fixture(ui)
    ui.page.click(f'.wf-row[data-span-id="{sid(7).hex()}"] .wf-op')
    ui.page.wait_for_selector(".detail .span-attributes")
    detail = ui.page.locator(".detail")
    assert "Charge" in detail.locator(".detail-op").inner_text()
    assert "ui-pay" in detail.inner_text() and "server" in detail.inner_text() and "ERROR" in detail.inner_text()
    assert "card declined" in detail.locator("[data-testid=status-message]").inner_text()
    shown = dict(zip(detail.locator(".span-attributes tr th").all_inner_texts(),
                     detail.locator(".span-attributes tr td").all_inner_texts()))
    spec = next(s for s in fixture_specs() if s.span_id == 7)
    assert shown == {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in spec.attributes.items()}
    events = detail.locator(".event").all_inner_texts()
    assert any("exception" in e and "+60.0ms" in e and "CardDeclined" in e for e in events), events
    assert any("retrying" in e and "attempt" in e for e in events), events
    link = detail.locator(".link a")
    assert link.count() == 1 and LINKED_TRACE.hex() in link.inner_text()
    assert "span=" in ui.page.url
    ui.screenshot("trace-detail")
    link.click()
    ui.page.wait_for_url(re.compile(f"/trace/{LINKED_TRACE.hex()}"))
    ui.page.wait_for_selector(".wf-row[data-span-id]")
    assert "score payment" in ui.page.inner_text(".trace-title")
    assert "selected" in ui.page.locator(f'.wf-row[data-span-id="{sid(1).hex()}"]').get_attribute("class")


def test_critical_path_rows_match_the_analysis_api(ui: UI) -> None:
    open_fixture(ui)
    ui.page.click("button:has-text('Critical path')")
    assert "cp=1" in ui.page.url
    marked = set(ui.page.evaluate("() => [...document.querySelectorAll('.wf-row.on-cp')].map(r => r.dataset.spanId)"))
    analysis = api(ui, f"/traces/{FIXTURE}/analysis")
    expected = {s["spanId"] for s in analysis["spans"] if s["onCriticalPath"]}
    assert marked == expected
    assert sid(5).hex() not in marked  # the audit runs in parallel and finishes early
    assert ui.page.locator(".waterfall.cp-on .wf-cp").count() >= len(expected)
    ui.screenshot("trace-critical-path")


def test_keyboard_navigation(ui: UI) -> None:
    open_fixture(ui)
    order = rows(ui)
    page = ui.page
    selected = lambda: page.evaluate("() => document.querySelector('.wf-row.selected')?.dataset.spanId")  # noqa: E731
    page.keyboard.press("ArrowDown")
    assert selected() == order[0]
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    assert selected() == order[2]
    page.keyboard.press("k")
    assert selected() == order[1]
    page.keyboard.press("ArrowLeft")  # collapse "reserve stock"
    assert len(rows(ui)) == 6
    page.keyboard.press("ArrowRight")
    assert len(rows(ui)) == 8
    page.keyboard.press("ArrowRight")  # into the first child
    assert selected() == order[2]
    page.keyboard.press("Enter")
    page.wait_for_selector(".detail .detail-op")
    page.keyboard.press("Escape")
    assert page.locator(".detail").is_hidden()
    page.keyboard.press("]")
    assert len(rows(ui)) == 1


def test_search_inside_the_trace_highlights_matches(ui: UI) -> None:
    open_fixture(ui)
    ui.page.fill("input[aria-label='Search in trace']", "postgresql")
    ui.page.wait_for_function("() => document.querySelectorAll('.wf-row.match').length > 0")
    marked = set(ui.page.evaluate("() => [...document.querySelectorAll('.wf-row.match')].map(r => r.dataset.spanId)"))
    assert marked == set(api(ui, f"/traces/{FIXTURE}/search", q="postgresql")["spanIds"]) == {sid(4).hex(), sid(8).hex()}
    ui.page.keyboard.press("Enter")
    assert "1 of 2" in ui.page.inner_text(".search-info")
    ui.screenshot("trace-search")


def test_breakdown_and_flame_graph_views(ui: UI) -> None:
    open_fixture(ui, "?view=breakdown", ready=".breakdown table")
    table_rows = ui.page.locator(".breakdown tbody tr")
    assert table_rows.count() == len({(s.service, s.name) for s in fixture_specs()})
    assert "Charge" in ui.page.inner_text(".breakdown tbody")
    ui.page.click("button:has-text('By service')")
    assert ui.page.locator(".breakdown tbody tr").count() == 3
    ui.screenshot("trace-breakdown")
    ui.page.click("button[role=tab]:has-text('Flame graph')")
    ui.page.wait_for_selector(".flame canvas")
    painted = ui.page.evaluate("""() => {
        const c = document.querySelector('.flame canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
        return n / (c.width * c.height);
    }""")
    assert painted > 0.2, painted
    assert "view=flame" in ui.page.url
    ui.screenshot("trace-flame")


def test_downloads(ui: UI) -> None:
    open_fixture(ui)
    with ui.page.expect_download() as d:
        ui.page.click("a:has-text('OTLP JSON')")
    doc = json.loads(open(d.value.path()).read())
    spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == 8 and d.value.suggested_filename == f"trace-{FIXTURE}.otlp.json"
    with ui.page.expect_download() as d:
        ui.page.click("a:has-text('Jaeger JSON')")
    doc = json.loads(open(d.value.path()).read())
    assert len(doc["data"][0]["spans"]) == 8


def test_large_trace_is_virtualised(ui: UI) -> None:
    ui.goto(f"/trace/{LARGE_TRACE.hex()}")
    ui.page.wait_for_selector(".wf-row[data-span-id]")
    count = lambda: ui.page.evaluate("() => document.querySelectorAll('.wf-row').length")  # noqa: E731
    nodes = ui.page.evaluate("() => document.querySelectorAll('*').length")
    assert count() < 100 and nodes < 3000, (count(), nodes)
    assert f"{LARGE_TRACE_SPANS:,}" in ui.page.inner_text(".trace-header")
    ui.page.evaluate("() => { const b = document.querySelector('.wf-body'); b.scrollTop = b.scrollHeight; }")
    last = api(ui, f"/traces/{LARGE_TRACE.hex()}")["spans"]["spanId"][-1]
    ui.page.wait_for_selector(f'.wf-row[data-span-id="{last}"]')
    assert count() < 100
    ui.screenshot("trace-large")


def test_unknown_trace_shows_a_message(ui: UI) -> None:
    ui.goto("/trace/0123456789abcdef0123456789abcdef")
    ui.page.wait_for_selector(".empty")
    assert "not found" in ui.page.inner_text(".empty")
    ui.errors = [e for e in ui.errors if "404" not in e]  # the browser logs the failed request


# --- compare, map, dashboard -------------------------------------------------------------------


def test_compare_two_traces(ui: UI) -> None:
    demo = [t for t in api(ui, "/traces", lookback="1h", limit=200, service="web-frontend")["traces"]
            if t["rootOperation"] == "POST /checkout" or t["rootOperation"].startswith("GET /products")]
    by_op: dict[str, list[str]] = {}
    for t in demo:
        by_op.setdefault(t["rootOperation"], []).append(t["traceId"])
    a, b = next(ids for ids in by_op.values() if len(ids) >= 2)[:2]
    ui.goto(f"/compare?a={a}&b={b}")
    ui.page.wait_for_selector(".cmp-table")
    cmp = api(ui, "/compare", a=a, b=b)
    assert ui.page.locator(".cmp-table tbody tr").count() == len(cmp["rows"])
    assert ui.page.locator(".cmp-table tr.only-a").count() == sum(r["b"] is None for r in cmp["rows"])
    assert ui.page.locator(".cmp-table tr.only-b").count() == sum(r["a"] is None for r in cmp["rows"])
    assert f"{cmp['matched']} spans matched" in ui.page.inner_text(".verdict")
    ui.screenshot("compare")


def test_service_map_opens_a_dashboard(ui: UI) -> None:
    ui.goto("/map")
    ui.page.wait_for_selector(".map-node")
    graph = api(ui, "/dependencies", lookback="1h")
    shown = set(ui.page.evaluate("() => [...document.querySelectorAll('.map-node')].map(n => n.dataset.service)"))
    assert shown == {n["name"] for n in graph["nodes"]} and {"api-gateway", "checkout-service", "ui-pay"} <= shown
    assert ui.page.locator(".map-edge-g").count() == len(graph["edges"])
    edge = next(e for e in graph["edges"] if e["parent"] == "ui-shop" and e["child"] == "ui-pay")
    label = ui.page.locator('.map-edge-g[data-parent="ui-shop"][data-child="ui-pay"] text').text_content()
    assert label.startswith(str(edge["callCount"])) and "100.0% err" in label
    ui.screenshot("service-map")
    ui.page.click('.map-node[data-service="checkout-service"]')
    ui.page.wait_for_url(re.compile("/service/checkout-service"))
    ui.page.wait_for_selector(".ops-table")
    assert "checkout-service" in ui.page.inner_text(".svc-head h1")


def test_service_dashboard(ui: UI) -> None:
    ui.goto("/service/checkout-service?lookback=1h")
    ui.page.wait_for_selector(".ops-table tbody tr")
    latency = api(ui, "/latency", service="checkout-service", entryOnly="true", lookback="1h")
    assert ui.page.inner_text(".tiles .tile:first-child .stat-value").replace(",", "") == str(latency["summary"]["count"])
    assert ui.page.locator(".chart.line svg path.series").count() == 5  # rate, errors, 3 percentiles
    ops = api(ui, "/services/checkout-service/operations/stats", lookback="1h")["operations"]
    assert ui.page.locator(".ops-table tbody tr").count() == len(ops)
    # A histogram bucket lists example traces that open.
    ui.page.locator(".histogram .bucket").filter(has=ui.page.locator("rect:not(.hit)")).first.click()
    ui.page.wait_for_selector(".examples li a")
    example = ui.page.locator(".examples li a").first.inner_text()
    assert any(example in b["exampleTraceIds"] for b in latency["histogram"])
    ui.screenshot("service-dashboard")
    ui.page.click("button:has-text('Slowest 5% vs the rest')")
    ui.page.wait_for_function("() => !document.querySelector('.loading') && document.querySelectorAll('.diff-table, .panel .muted').length")
    ui.page.locator(".examples li a").first.click()
    ui.page.wait_for_url(re.compile(f"/trace/{example}"))
    ui.page.wait_for_selector(".wf-row[data-span-id]")


def test_operation_dashboard_from_a_deep_link(ui: UI) -> None:
    ui.goto(f"/trace/{FIXTURE}")
    ui.page.wait_for_selector(".wf-row[data-span-id]")
    ui.page.click(".trace-title a:has-text('POST /checkout')")
    ui.page.wait_for_url(re.compile(r"/service/ui-shop\?operation=POST"))
    ui.page.wait_for_selector(".tiles")
    assert ui.page.input_value("select[name=operation]") == "POST /checkout"
    assert ui.page.inner_text(".tiles .tile:first-child .stat-value") == "1"
    ui.screenshot("operation-dashboard")
