"""Response helpers of ``/api/spanlake/v1``: compact JSON, gzipped when large and accepted.

Big documents (a 100,000-span trace view is several megabytes) are serialised by hand rather
than through response models; gzip at a low level shrinks them four- to fivefold for a few
milliseconds per megabyte, which matters once the UI is not on localhost.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

GZIP_MIN_BYTES = 32 * 1024


def json_response(doc: Any, request: Request, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    out_headers = dict(headers or {})
    out_headers["Vary"] = "Accept-Encoding"
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=3)
        out_headers["Content-Encoding"] = "gzip"
    return Response(body, status, headers=out_headers, media_type="application/json")
