"""Clock-skew correction, following Jaeger's ``CorrectClockSkew`` adjuster.

Spans are grouped by host: the resource attribute ``host.id``, else ``host.ip`` (a string, or
the first element of an array), else ``host.name``; no host key counts as "a different host".
Walking the tree from each root, a child from a different host than the skew it inherited is
compared with its (already adjusted) parent:

* it fits inside the parent: no shift;
* it lasted longer than the parent: it is only kept from starting before the parent;
* otherwise it is centred in the parent: ``delta = parent.start + (parent.dur - child.dur) // 2
  - child.start`` (network latency assumed equal both ways).

The delta then applies to that span and, inherited, to every descendant on the same host: start
time and event times move, durations do not. Each shifted span gets the warning "This span's
timestamps were adjusted by <delta>". A delta larger than ``max_delta_ns`` is not applied and
the span says so; ``max_delta_ns=0`` disables the adjustment (Jaeger's default), which still
reports the delta it would have applied. Roots (including spans whose parent is missing) are
never shifted. The walk is iterative, so deep traces cannot overflow the stack.
"""

from __future__ import annotations

from spanlake.model import Resource, decode_to_json, encode_json_any_value, string_form

from ..assemble import assemble_trace
from .base import AdjusterInput, copy_span


def go_duration(ns: int) -> str:
    """``ns`` formatted like Go's ``time.Duration.String()`` (``1.5s``, ``250µs``, ``1h2m0s``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_frac(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_frac(u, 6)}ms"
    whole, rest = divmod(u, 1_000_000_000)
    out = _frac(whole % 60 * 1_000_000_000 + rest, 9) + "s"
    minutes = whole // 60
    if minutes:
        out = f"{minutes % 60}m{out}"
        if minutes // 60:
            out = f"{minutes // 60}h{out}"
    return sign + out


def _frac(v: int, prec: int) -> str:
    whole, rest = divmod(v, 10**prec)
    digits = str(rest).rjust(prec, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def host_key(resource: Resource) -> str:
    """The host a resource runs on, by Jaeger's rule; empty when unknown."""
    attrs = resource.attributes
    enc = attrs.get("host.id")
    if enc is not None:
        return enc[1:] if enc[:1] == "s" else ""
    enc = attrs.get("host.ip")
    if enc is not None:
        if enc[:1] == "s":
            return enc[1:]
        if enc[:1] == "a":
            values = decode_to_json(enc)["arrayValue"].get("values") or []
            if values:
                return string_form(encode_json_any_value(values[0]))
    enc = attrs.get("host.name")
    if enc is not None:
        return enc[1:] if enc[:1] == "s" else ""
    return ""


class ClockSkewAdjuster:
    """Adjuster object; ``max_delta_ns`` is the largest shift applied (0 disables shifting)."""

    def __init__(self, max_delta_ns: int = 0) -> None:
        self.max_delta_ns = max_delta_ns

    def __call__(self, trace: AdjusterInput) -> AdjusterInput:
        spans = trace.spans
        tree = assemble_trace(spans)
        hosts_by_resource: dict[int, str] = {}
        hosts = []
        append = hosts.append
        for s in spans:
            r = s.resource
            h = hosts_by_resource.get(id(r))
            if h is None:
                h = hosts_by_resource[id(r)] = host_key(r)
            append(h)

        start = list(tree.starts)  # adjusted start times, filled in as the walk goes
        dur = [s.duration_ns for s in spans]
        applied: dict[int, int] = {}
        notes: dict[int, str] = {}
        children = tree.children

        stack: list[tuple[int, int, str, int]] = [(r, -1, hosts[r], 0) for r in reversed(tree.roots)]
        pop, push = stack.pop, stack.append
        while stack:
            i, p, skew_host, delta = pop()
            if p >= 0 and (hosts[i] != skew_host or hosts[i] == ""):
                skew_host = hosts[i]
                delta = _skew(start[p], dur[p], start[i], dur[i])
            if delta:
                if abs(delta) > self.max_delta_ns:
                    if self.max_delta_ns == 0:
                        notes[i] = f"clock skew adjustment disabled; not applying calculated delta of {go_duration(delta)}"
                    else:
                        notes[i] = (
                            f"max clock skew adjustment delta of {go_duration(self.max_delta_ns)} exceeded; "
                            f"not applying calculated delta of {go_duration(delta)}"
                        )
                else:
                    start[i] += delta
                    applied[i] = delta
                    notes[i] = f"This span's timestamps were adjusted by {go_duration(delta)}"
            kids = children[i]
            if kids:
                for c in reversed(kids):
                    push((c, i, skew_host, delta))

        if not notes:
            return trace
        out = list(spans)
        warnings = list(trace.span_warnings)  # only the lists of noted spans are replaced
        for i, delta in applied.items():
            s = copy_span(spans[i])
            s.start_ns += delta
            for e in s.events:
                e.time_ns += delta
            out[i] = s
        for i, note in notes.items():
            warnings[i] = [*warnings[i], note]
        return AdjusterInput(out, warnings, list(trace.warnings))


def _skew(parent_start: int, parent_dur: int, child_start: int, child_dur: int) -> int:
    if child_dur > parent_dur:
        # An async child, or a parent that timed out: only keep the child from starting early.
        return parent_start - child_start if child_start < parent_start else 0
    if child_start >= parent_start and child_start + child_dur <= parent_start + parent_dur:
        return 0
    return parent_start + (parent_dur - child_dur) // 2 - child_start


def correct_clock_skew(max_delta_ns: int = 0) -> ClockSkewAdjuster:
    return ClockSkewAdjuster(max_delta_ns)
