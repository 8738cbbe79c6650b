"""The shared log model: Arrow schema of a log batch, severities, and the read model.

Logs follow the span model of :mod:`spanlake.model`:

* the collector decodes OTLP into a :class:`LogBatch`: a :data:`LOG_SCHEMA` table plus resource
  and scope tables with the very rows and fingerprints spans use (:data:`RESOURCE_SCHEMA`,
  :data:`SCOPE_SCHEMA`), so a service's resource is stored once for its spans and its logs;
* attribute values are encoded strings (type tag + payload, see :mod:`spanlake.model`);
* the query side turns stored rows into :class:`LogRecord` objects with :func:`logs_from_arrow`.

The body is kept twice cheaply: ``body`` is its text (a string body as is, other values in
their string form, so arrays and maps as JSON), which searches read; ``body_value`` is the
encoded value for every body that is not a string (NULL for string bodies, which ``body``
already holds exactly), so nothing is lost.

``time_ns`` is the record's time, or its observed time when the record has none (the OTLP
proto recommends that fallback); ``observed_time_ns`` is the time the sender observed it, or
the time Spanlake received it when the sender set neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from spanlake.model import (
    ATTR_MAP,
    MISSING_SERVICE_NAME,
    RESOURCE_SCHEMA,
    SCOPE_SCHEMA,
    Resource,
    Scope,
    string_form,
)

__all__ = [
    "LOG_SCHEMA",
    "LogBatch",
    "LogRecord",
    "SEVERITY_RANGES",
    "body_columns",
    "logs_from_arrow",
    "parse_severity",
    "severity_name",
]

#: One row per log record. ``trace_id``/``span_id`` are NULL when the record is not correlated
#: (absent, or all zeros). ``log_id`` is a random 64-bit id given on receipt: it orders records
#: of the same nanosecond and makes page cursors exact.
LOG_SCHEMA = pa.schema(
    [
        ("time_ns", pa.int64()),
        ("observed_time_ns", pa.int64()),
        ("severity_number", pa.uint8()),  # 0 unspecified, 1..24 TRACE..FATAL4
        ("severity_text", pa.string()),
        ("body", pa.string()),  # text form, searched
        ("body_value", pa.string()),  # encoded AnyValue; NULL for a string body
        ("attributes", ATTR_MAP),
        ("dropped_attributes_count", pa.uint32()),
        ("flags", pa.uint32()),
        ("trace_id", pa.binary()),  # 16 bytes or NULL
        ("span_id", pa.binary()),  # 8 bytes or NULL
        ("event_name", pa.string()),
        ("service_name", pa.string()),  # copied from the resource for search
        ("resource_id", pa.uint64()),
        ("scope_id", pa.uint64()),
        ("scope_name", pa.string()),  # copied from the scope
        ("scope_version", pa.string()),
        ("log_id", pa.uint64()),
    ]
)


def body_columns(encoded: str) -> tuple[str, str | None]:
    """(``body``, ``body_value``) columns of an encoded body value."""
    if encoded[:1] == "s":
        return encoded[1:], None
    return string_form(encoded), encoded


@dataclass
class LogBatch:
    """Log records decoded from one or more export requests, ready for the store.

    ``resources`` and ``scopes`` hold one row per distinct id referenced by ``logs`` (they may
    repeat rows the store already has, from spans or logs; the store de-duplicates by id).
    """

    logs: pa.Table
    resources: pa.Table
    scopes: pa.Table

    @property
    def num_logs(self) -> int:
        return self.logs.num_rows

    @staticmethod
    def empty() -> "LogBatch":
        return LogBatch(LOG_SCHEMA.empty_table(), RESOURCE_SCHEMA.empty_table(), SCOPE_SCHEMA.empty_table())

    @staticmethod
    def concat(batches: list["LogBatch"]) -> "LogBatch":
        if len(batches) == 1:
            return batches[0]
        if not batches:
            return LogBatch.empty()
        return LogBatch(
            pa.concat_tables([b.logs for b in batches]),
            pa.concat_tables([b.resources for b in batches]),
            pa.concat_tables([b.scopes for b in batches]),
        )


# ---------------------------------------------------------------------------------------------
# Severities
# ---------------------------------------------------------------------------------------------

#: Short name -> first severity number of its range (the OTel log data model).
SEVERITY_RANGES: dict[str, int] = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
_ALIASES = {"WARNING": "WARN", "ERR": "ERROR", "CRITICAL": "FATAL"}
_SEVERITY_TEXT = re.compile(r"([A-Z]+)([234]?)")


def severity_name(number: int) -> str:
    """Short name of a severity number: ``INFO``, ``WARN3``...; ``UNSPECIFIED`` for 0."""
    if number <= 0:
        return "UNSPECIFIED"
    if number > 24:
        return str(number)
    base = (number - 1) // 4
    name = list(SEVERITY_RANGES)[base]
    offset = number - SEVERITY_RANGES[name]
    return name if offset == 0 else f"{name}{offset + 1}"


def parse_severity(text: str) -> int:
    """Severity number of a number (``0``..``255``) or a short name (``WARN``, ``error2``,
    ``warning``), case-insensitive. Raises ValueError for anything else."""
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if n > 255:
            raise ValueError(f"severity number {n} is out of range 0..255")
        return n
    m = _SEVERITY_TEXT.fullmatch(t)
    name = _ALIASES.get(m.group(1), m.group(1)) if m else None
    if name not in SEVERITY_RANGES:
        raise ValueError(f"unknown severity {text!r}: use a number or TRACE, DEBUG, INFO, WARN, ERROR, FATAL")
    return SEVERITY_RANGES[name] + (int(m.group(2)) - 1 if m.group(2) else 0)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Read model
# ---------------------------------------------------------------------------------------------


@dataclass
class LogRecord:
    """One stored log record with its resource and scope. Attribute values are encoded."""

    time_ns: int
    observed_time_ns: int
    severity_number: int = 0
    severity_text: str = ""
    body: str = "n"  # encoded AnyValue ("n": no body)
    attributes: dict[str, str] = field(default_factory=dict)
    dropped_attributes_count: int = 0
    flags: int = 0
    trace_id: bytes = b""  # b"" when not correlated
    span_id: bytes = b""
    event_name: str = ""
    log_id: int = 0
    resource: Resource = field(default_factory=Resource)
    scope: Scope = field(default_factory=Scope)

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    @property
    def body_text(self) -> str:
        """What body searches look at: the string, or the string form (JSON for arrays/maps)."""
        return string_form(self.body)


def _attrs(pairs: Any) -> dict[str, str]:
    return dict(pairs) if pairs else {}


def logs_from_arrow(logs: pa.Table, resources: pa.Table, scopes: pa.Table) -> list[LogRecord]:
    """Read-model records of stored rows; unknown resource or scope ids give empty ones (the
    row's own service and scope names are kept)."""
    res_by_id = {
        r["resource_id"]: Resource(_attrs(r["attributes"]), r["dropped_attributes_count"] or 0, r["schema_url"] or "")
        for r in resources.to_pylist()
    }
    scope_by_id = {
        s["scope_id"]: Scope(
            s["name"] or "", s["version"] or "", _attrs(s["attributes"]), s["dropped_attributes_count"] or 0,
            s["schema_url"] or "",
        )
        for s in scopes.to_pylist()
    }
    out: list[LogRecord] = []
    for row in logs.to_pylist():
        resource = res_by_id.get(row["resource_id"])
        if resource is None:
            service = row.get("service_name")
            resource = Resource({"service.name": "s" + service} if service and service != MISSING_SERVICE_NAME else {})
        body_value = row["body_value"]
        out.append(
            LogRecord(
                time_ns=row["time_ns"],
                observed_time_ns=row["observed_time_ns"],
                severity_number=row["severity_number"] or 0,
                severity_text=row["severity_text"] or "",
                body=body_value if body_value is not None else "s" + (row["body"] or ""),
                attributes=_attrs(row["attributes"]),
                dropped_attributes_count=row["dropped_attributes_count"] or 0,
                flags=row["flags"] or 0,
                trace_id=row["trace_id"] or b"",
                span_id=row["span_id"] or b"",
                event_name=row["event_name"] or "",
                log_id=row["log_id"] or 0,
                resource=resource,
                scope=scope_by_id.get(row["scope_id"], Scope(row["scope_name"] or "", row["scope_version"] or "")),
            )
        )
    return out
