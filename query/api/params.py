"""Parsing of query parameters shared by the API families; errors name the parameter."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime

from spanlake.config import parse_duration_ns
from spanlake.model import SPAN_KIND_NUMBERS


class ParamError(ValueError):
    """A query parameter could not be parsed; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"unable to parse param '{param}': {message}")
        self.param = param


def trace_id(text: str, param: str = "traceID") -> bytes:
    """Hex (up to 32 digits, left-padded like Jaeger) or, for api_v3, 22/24-character base64."""
    t = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]{1,32}", t):
        return bytes.fromhex(t.rjust(32, "0"))
    try:
        raw = base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 16:
        return raw
    raise ParamError(param, f"malformed trace id {text!r}: expected up to 32 hex digits")


def go_duration(text: str, param: str) -> int:
    """Go duration strings (``1.2s``, ``100ms``, ``500us``, ``1h2m``) -> nanoseconds."""
    try:
        return parse_duration_ns(text)
    except ValueError:
        raise ParamError(param, f'time: invalid duration "{text}"') from None


def integer(text: str, param: str, minimum: int | None = None) -> int:
    try:
        v = int(text)
    except ValueError:
        raise ParamError(param, f"strconv.ParseInt: parsing {text!r}: invalid syntax") from None
    if minimum is not None and v < minimum:
        raise ParamError(param, f"must be at least {minimum}")
    return v


def boolean(text: str | None) -> bool:
    return (text or "").lower() in ("1", "true", "yes")


def rfc3339_ns(text: str, param: str) -> int:
    """RFC 3339 with up to nanosecond precision -> Unix nanoseconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        raise ParamError(param, f"parsing time {text!r} as RFC 3339 failed")
    base = datetime.fromisoformat(m.group(1).replace(" ", "T") + (m.group(3).replace("Z", "+00:00")))
    frac = int((m.group(2) or "0").ljust(9, "0"))
    return int(base.timestamp()) * 1_000_000_000 + frac


def span_kind(text: str | None, param: str = "spanKind") -> int | None:
    if not text:
        return None
    kind = SPAN_KIND_NUMBERS.get(text.lower().removeprefix("span_kind_"))
    if kind is None:
        raise ParamError(param, f"unknown span kind {text!r} (server, client, producer, consumer, internal)")
    return kind


def tags(tags_json: list[str], tag_pairs: list[str]) -> tuple[tuple[str, str], ...]:
    """Jaeger's ``tags`` (JSON maps) and ``tag=k:v`` parameters -> (key, value) pairs."""
    out: list[tuple[str, str]] = []
    for doc in tags_json:
        try:
            parsed = json.loads(doc)
        except json.JSONDecodeError as e:
            raise ParamError("tags", f"malformed JSON: {e}") from None
        if not isinstance(parsed, dict):
            raise ParamError("tags", "expected a JSON object of string values")
        out.extend((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in parsed.items())
    for pair in tag_pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise ParamError("tag", f"malformed tag {pair!r}: expected key:value")
        out.append((key, value))
    return tuple(out)
