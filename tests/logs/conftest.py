"""Fixtures of the log tests: the e2e fixtures (real ``spanlake serve`` processes) and helpers."""

from __future__ import annotations

from tests.e2e.conftest import (  # noqa: F401  (fixtures and the report hook, re-exported)
    conformance,
    fresh_server,
    pytest_runtest_makereport,
    shared_server,
)
