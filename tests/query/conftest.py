"""Builders for query-side tests: small traces written as ``mk(span_id, parent, start, dur)``."""

from __future__ import annotations

import pytest

from spanlake.model import Event, Resource, Scope, Span, encode_string


class SpanBuilder:
    """Makes spans with integer ids; spans of one (service, host) share one Resource object."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str | None], Resource] = {}
        self.scope = Scope("test-scope", "1.0")

    def resource(self, service: str = "svc", host: str | None = None) -> Resource:
        key = (service, host)
        if key not in self.resources:
            attrs = {"service.name": encode_string(service)}
            if host is not None:
                attrs["host.name"] = encode_string(host)
            self.resources[key] = Resource(attrs)
        return self.resources[key]

    def __call__(
        self,
        span_id: int,
        parent: int | None = None,
        start: int = 0,
        dur: int = 10,
        *,
        name: str = "op",
        service: str = "svc",
        host: str | None = None,
        kind: int = 1,
        status: int = 0,
        attrs: dict[str, str] | None = None,
        events: list[Event] | None = None,
        trace: int = 1,
    ) -> Span:
        return Span(
            trace_id=trace.to_bytes(16, "big"),
            span_id=span_id.to_bytes(8, "big"),
            parent_span_id=parent.to_bytes(8, "big") if parent is not None else b"",
            name=name,
            kind=kind,
            start_ns=start,
            duration_ns=dur,
            status_code=status,
            attributes=dict(attrs or {}),
            events=list(events or []),
            resource=self.resource(service, host),
            scope=self.scope,
        )


@pytest.fixture
def mk() -> SpanBuilder:
    return SpanBuilder()
