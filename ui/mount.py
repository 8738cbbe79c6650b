"""``mount_ui``: serve the web UI (static assets plus the single-page app's routes).

The UI is plain ES modules, CSS and SVG under ``static/`` and one ``index.html``; nothing is
built or fetched at run time. Page routes (``/``, ``/search``, ``/trace/{id}``, ``/compare``,
``/map``, ``/service/{name}``) all return ``index.html`` and the browser-side router renders the
page. They are explicit routes, not a catch-all, so ``/api``, ``/healthz``, ``/readyz`` and
``/metrics`` are never shadowed; still, mount the UI after every API router.

Assets are answered from memory by an ``async`` handler (re-read when the file changes) with an
ETag, so browsers revalidate cheaply on every load: a page load asks for some twenty small files,
and answering them must not compete with the trace request the page is waiting for.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

UI_DIR = Path(__file__).resolve().parent
STATIC_DIR = UI_DIR / "static"
INDEX_HTML = UI_DIR / "index.html"

#: Browser paths of the single-page app; each serves ``index.html``.
PAGE_ROUTES = ("/", "/search", "/trace/{trace_id}", "/compare", "/map", "/service/{service:path}")

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json"}


@dataclass
class _Asset:
    stamp: tuple[int, int]  # mtime_ns, size
    body: bytes
    etag: str
    media_type: str


class AssetStore:
    """Files under one directory, kept in memory and refreshed when they change on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[Path, _Asset] = {}

    def get(self, relative: str) -> _Asset | None:
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not path.is_file():
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        asset = self._cache.get(path)
        if asset is None or asset.stamp != stamp:
            body = path.read_bytes()
            media_type = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            asset = _Asset(stamp, body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"', media_type)
            self._cache[path] = asset
        return asset

    def response(self, relative: str, request: Request) -> Response:
        asset = self.get(relative)
        if asset is None:
            return Response("not found", 404, media_type="text/plain")
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, headers=headers, media_type=asset.media_type)


def mount_ui(app: FastAPI) -> None:
    """Serve the UI on ``app``: assets under ``/static``, the page routes as ``index.html``."""
    static = AssetStore(STATIC_DIR)
    pages = AssetStore(UI_DIR)

    async def asset(path: str, request: Request) -> Response:
        return static.response(path, request)

    async def index(request: Request) -> Response:
        return pages.response(INDEX_HTML.name, request)

    async def trace_page(trace_id: str, request: Request) -> Response:
        return trace_page_response(pages, trace_id, request)

    app.add_api_route("/static/{path:path}", asset, methods=["GET", "HEAD"], include_in_schema=False)
    for route in PAGE_ROUTES:
        handler = trace_page if route == "/trace/{trace_id}" else index
        app.add_api_route(route, handler, methods=["GET"], include_in_schema=False)


_HEX_ID = re.compile(r"[0-9a-fA-F]{1,32}")


def trace_page_response(pages: AssetStore, trace_id: str, request: Request) -> Response:
    """``index.html`` for ``/trace/{id}`` with a preload of the trace as the first request.

    The page's twenty-odd module files would otherwise take the browser's six connections
    first and the trace request, the long pole, would queue behind them (bench/ui.py measured
    the wait at 0.04-0.17 s). A ``<link rel=preload>`` at the top of ``<head>`` is the first
    thing the browser's preload scanner asks for; the inline script's ``fetch`` of the same URL
    (same mode and credentials) then takes the preloaded response.
    """
    asset = pages.get(INDEX_HTML.name)
    if asset is None:
        return Response("not found", 404, media_type="text/plain")
    if not _HEX_ID.fullmatch(trace_id):  # the page itself reports a malformed id
        return pages.response(INDEX_HTML.name, request)
    url = f"/api/spanlake/v1/traces/{trace_id.lower()}"
    link = f'<link rel="preload" href="{url}" as="fetch" crossorigin="anonymous">'
    body = asset.body.replace(b"<head>", b"<head>\n" + link.encode(), 1)
    return Response(body, headers={"Cache-Control": "no-cache"}, media_type=asset.media_type)
