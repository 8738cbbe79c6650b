"""Turn numeric ``ip`` / ``peer.ipv4`` attributes into dotted IPv4 strings (Jaeger's
``NormalizeIPAttributes``), on span and resource attributes alike.

Old Jaeger clients sent IPv4 addresses as 32-bit integers; ``16909060`` becomes ``"1.2.3.4"``.
"""

from __future__ import annotations

import math

from spanlake.model import Resource, encode_string

from .base import AdjusterInput, copy_span

IP_KEYS = ("ip", "peer.ipv4")


def _dotted(enc: str) -> str | None:
    tag, payload = enc[:1], enc[1:]
    if tag == "i":
        v = int(payload)
    elif tag == "d":
        f = float(payload)
        if not math.isfinite(f):
            return None
        v = int(f)
    else:
        return None
    v &= 0xFFFFFFFF
    return encode_string(".".join(str((v >> shift) & 0xFF) for shift in (24, 16, 8, 0)))


def _fixed(attrs: dict[str, str]) -> dict[str, str] | None:
    if "ip" not in attrs and "peer.ipv4" not in attrs:  # IP_KEYS, spelled out: this runs per span
        return None
    changes = {k: d for k in IP_KEYS if k in attrs and (d := _dotted(attrs[k])) is not None}
    if not changes:
        return None
    return {k: changes.get(k, v) for k, v in attrs.items()}


def normalize_ip_attributes(trace: AdjusterInput) -> AdjusterInput:
    resources: dict[int, Resource] = {}
    out = []
    changed = False
    for s in trace.spans:
        res = resources.get(id(s.resource))
        if res is None:
            attrs = _fixed(s.resource.attributes)
            res = s.resource if attrs is None else Resource(attrs, s.resource.dropped_attributes_count, s.resource.schema_url)
            resources[id(s.resource)] = res
        attrs = _fixed(s.attributes)
        if attrs is not None or res is not s.resource:
            s = copy_span(s)
            s.resource = res
            if attrs is not None:
                s.attributes = attrs
            changed = True
        out.append(s)
    if not changed:
        return trace
    return AdjusterInput(out, list(trace.span_warnings), list(trace.warnings))
