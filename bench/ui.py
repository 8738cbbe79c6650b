"""UI benchmark: open traces of 1,000, 10,000 and 100,000 spans in headless Chromium.

Starts a real ``spanlake serve``, sends each trace through OTLP/HTTP, then opens
``/trace/{id}`` several times in fresh pages and prints medians of:

* ``api``: the trace view request alone (server read + adjusters + analysis + JSON), timed from
  Python: the server-side share of what the page waits for; printed as the baseline;
* ``rows``: navigation start to the first span rows on screen;
* ``idle``: navigation start to the first idle moment after that (the page is interactive);
* ``data``: navigation start to the trace data received (the page requests it from an inline
  script in ``index.html``, before its modules load);
* ``client``: ``idle`` minus ``data``: what the page itself costs (parse, model, first render);
* ``heap``: JavaScript heap in use (Chromium's ``JSHeapUsedSize``), and the DOM node count;
* ``expand``: collapse all, then expand all until the rows are painted again;
* scrolling: 120 frames each scrolling 1,500 px; the median and p95 frame interval and the
  frames slower than 50 ms.

Targets (``targets.md``): 10,000 spans interactive in at most 1 s; 100,000 in at most 5 s with
smooth scrolling. Usage: ``python bench/ui.py [--sizes 1000,10000,100000] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.server import SpanlakeServer  # noqa: E402
from tests.ui.otlp_fixtures import large_trace_requests, send  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TARGETS_S = {10_000: 1.0, 100_000: 5.0}

SCROLL_JS = """async (frames) => {
    const body = document.querySelector('.wf-body');
    const out = [];
    let last = performance.now();
    for (let k = 0; k < frames; k++) {
        body.scrollTop = (body.scrollTop + 1500) % Math.max(body.scrollHeight - body.clientHeight, 1);
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        out.push(now - last);
        last = now;
    }
    return out;
}"""


def trace_id(n: int) -> bytes:
    return (0x5EA1B0000000 + n).to_bytes(16, "big")


def wait_stored(http_url: str, tid: bytes, n: int, timeout_s: float = 300) -> None:
    """Poll the search summaries (cheap) until the trace has all its spans."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = httpx.get(f"{http_url}/api/spanlake/v1/traces",
                      params={"service": "svc-gateway", "operation": "GET /big-page", "lookback": "2h", "limit": 50},
                      timeout=60)
        for t in r.json().get("traces", []):
            if t["traceId"] == tid.hex() and t["spanCount"] >= n:
                return
        time.sleep(0.5)
    raise TimeoutError(f"trace of {n} spans not stored after {timeout_s}s")


def time_api(http_url: str, tid: bytes) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    r = httpx.get(f"{http_url}/api/spanlake/v1/traces/{tid.hex()}", timeout=600, headers={"Accept-Encoding": "gzip"})
    elapsed = time.perf_counter() - t0
    r.raise_for_status()
    return elapsed, len(r.content), int(r.headers.get("content-length", len(r.content)))


def open_once(browser, http_url: str, tid: bytes) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(f"{http_url}/trace/{tid.hex()}", timeout=600_000)
    page.wait_for_function("() => window.__spanlakeTrace && window.__spanlakeTrace.idle > 0", timeout=600_000, polling=20)
    perf = page.evaluate("""(id) => {
        const api = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/traces/' + id));
        return {rows: __spanlakeTrace.firstRows, idle: __spanlakeTrace.idle, built: __spanlakeTrace.built,
                apiStart: api.startTime, apiEnd: api.responseEnd};
    }""", tid.hex())
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    dom = page.evaluate("() => document.getElementsByTagName('*').length")
    expand = page.evaluate("() => __spanlakeTrace.timeExpandAll()")
    frames = page.evaluate(SCROLL_JS, 120)
    if errors:
        raise RuntimeError(f"page errors: {errors}")
    context.close()
    frames.sort()
    return {
        "rows": perf["rows"] / 1000, "idle": perf["idle"] / 1000,
        "client": (perf["idle"] - perf["apiEnd"]) / 1000, "built": perf["built"] / 1000,
        "data": perf["apiEnd"] / 1000, "request_start": perf["apiStart"] / 1000,
        "heap_mb": metrics["JSHeapUsedSize"] / 2**20, "dom": dom, "expand": expand / 1000,
        "frame_p50": statistics.median(frames), "frame_p95": frames[int(len(frames) * 0.95) - 1],
        "slow_frames": sum(f > 50 for f in frames),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated span counts")
    parser.add_argument("--runs", type=int, default=3, help="page loads per size (medians are printed)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="spanlake-bench-ui-") as data, \
            SpanlakeServer(Path(data)) as server, sync_playwright() as pw:
        print(f"server {server.http_url}; sending traces of {sizes} spans over OTLP/HTTP", flush=True)
        base = time.time_ns() - 60_000_000_000
        for k, n in enumerate([1, *sizes]):
            t0 = time.perf_counter()
            send(server.otlp_http, large_trace_requests(trace_id(n), n, t0_ns=base + k * 1_000_000_000))
            wait_stored(server.http_url, trace_id(n), n)
            print(f"  {n:>7} spans stored in {time.perf_counter() - t0:.1f}s", flush=True)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        header = (f"{'spans':>7} {'api(base)':>9} {'payload':>13} {'req':>5} {'data':>6} {'rows':>6} {'idle':>6} {'client':>6} "
                  f"{'heap':>7} {'dom':>5} {'expand':>7} {'frame p50/p95':>14} {'>50ms':>5}  target")
        print(header)
        for n in [1, *sizes]:
            tid = trace_id(n)
            api = [time_api(server.http_url, tid) for _ in range(args.runs)]
            runs = [open_once(browser, server.http_url, tid) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            api_s = statistics.median(a[0] for a in api)
            raw_kb, gz_kb = api[0][1] / 1024, api[0][2] / 1024
            target = TARGETS_S.get(n)
            verdict = "" if target is None else (f"<= {target:.0f}s: {'met' if med['idle'] <= target else 'MISSED'}"
                                                 f" (client side alone {med['client']:.2f}s)")
            print(f"{n:>7} {api_s:>8.2f}s {raw_kb:>6.0f}/{gz_kb:<5.0f}KB {med['request_start']:>4.2f}s {med['data']:>5.2f}s {med['rows']:>5.2f}s {med['idle']:>5.2f}s "
                  f"{med['client']:>5.2f}s {med['heap_mb']:>5.1f}MB {med['dom']:>5.0f} {med['expand'] * 1000:>5.0f}ms "
                  f"{med['frame_p50']:>6.1f}/{med['frame_p95']:<6.1f}ms {med['slow_frames']:>5.0f}  {verdict}", flush=True)
        browser.close()
    print("api: the trace request timed from Python (server side, the baseline); req: navigation start to the"
          " trace request's start; data/rows/idle: from navigation"
          " start; client: idle minus data (the page's own cost); payload: raw/gzip.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
