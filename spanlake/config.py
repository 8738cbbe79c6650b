"""Configuration: one frozen model with a section per component, loaded from four sources.

Sources, later ones winning: defaults, the YAML file (``--config``), environment variables
``SPANLAKE_<NAME>``, command-line flags. Every setting has one *name* used by all three outer
sources: the flag ``--otlp-grpc``, the variable ``SPANLAKE_OTLP_GRPC`` and the YAML key
``otlp-grpc`` (``otlp_grpc`` is accepted too). :data:`SETTINGS` maps names to fields; only
:func:`load_config` reads the environment or files. Errors name the setting and its source.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """A setting has a bad value; the message names the setting and where it came from."""


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                   "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000,
                   "w": 604_800_000_000_000}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)")


def parse_duration_ns(text: str) -> int:
    """``7d``, ``36h``, ``1h30m``, ``250ms`` -> nanoseconds. Raises ValueError."""
    text = text.strip()
    pos, total = 0, 0.0
    if not text:
        raise ValueError("empty duration")
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 7d, 36h, 90m, 30s)")
    return int(total)


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:4317`` for IPv6) -> (host, port). Port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not (0 <= int(port) <= 65535):
        raise ValueError(f"not HOST:PORT: {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_size_bytes(text: str | int) -> int:
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*", str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 16MiB)")
    mult = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
    return int(m.group(1)) * mult[m.group(2)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StorageConfig(_Section):
    data_dir: str = Field("./spanlake-data", description="Directory of the embedded store (catalog and data files).")
    catalog: str | None = Field(None, description="DuckLake catalog, e.g. 'postgres:dbname=spanlake host=db'. Default: a SQLite catalog inside the data directory.")
    data_path: str | None = Field(None, description="Where Parquet data files go: a folder or s3://bucket/prefix. Default: <data>/data.")
    retention: str = Field("7d", description="Spans older than this are deleted in the background (0 keeps everything).")
    memory_limit: str = Field("2GB", description="DuckDB memory_limit for each process.")
    threads: int = Field(2, ge=1, description="DuckDB threads for each process.")
    max_queue_spans: int = Field(200_000, ge=1000, description="Spans waiting for commit before new requests get 429 / RESOURCE_EXHAUSTED.")
    commit_interval_ms: int = Field(50, ge=1, description="Group commit: the longest a batch waits for its commit.")
    commit_spacing_ms: int = Field(250, ge=0, description="Group commit under load (batches arriving while a commit runs): the least time between the starts of two commits, so commits grow with the load rather than their number; each costs a fixed ~40 ms of CPU in the catalog.")

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: str) -> str:
        if v.strip() != "0":
            parse_duration_ns(v)
        return v

    @property
    def retention_ns(self) -> int | None:
        return None if self.retention.strip() == "0" else parse_duration_ns(self.retention)


class CollectorConfig(_Section):
    otlp_grpc: str = Field("0.0.0.0:4317", description="OTLP/gRPC listen address (HOST:PORT; port 0 picks one).")
    otlp_http: str = Field("0.0.0.0:4318", description="OTLP/HTTP listen address (HOST:PORT; port 0 picks one).")
    max_message_size: str = Field("16MiB", description="Largest OTLP request accepted, after decompression.")
    workers: int = Field(1, ge=1, le=64, description="Receiver processes sharing the OTLP ports (SO_REUSEPORT) and the store.")

    @field_validator("otlp_grpc", "otlp_http")
    @classmethod
    def _addr(cls, v: str) -> str:
        parse_host_port(v)
        return v

    @field_validator("max_message_size")
    @classmethod
    def _size(cls, v: str) -> str:
        if parse_size_bytes(v) < 1024:
            raise ValueError("must be at least 1KiB")
        return v

    @property
    def max_message_bytes(self) -> int:
        return parse_size_bytes(self.max_message_size)


class QueryConfig(_Section):
    http: str = Field("0.0.0.0:16686", description="Query API and web UI listen address (HOST:PORT).")
    query_grpc: str = Field("0.0.0.0:16685", description="gRPC query API (Jaeger api_v3 compatible) listen address.")
    max_clock_skew_adjustment: str = Field("10m", description="Largest clock-skew correction applied to a span.")

    @field_validator("http", "query_grpc")
    @classmethod
    def _addr(cls, v: str) -> str:
        parse_host_port(v)
        return v


class MetricsConfig(_Section):
    resolution: str = Field("15s", description="Interval at which span, service-graph and log series are aggregated and stored (must divide 5m).")
    span_metrics: bool = Field(True, description="Derive calls and duration series from every span (spanmetrics connector names).")
    service_graph: bool = Field(True, description="Derive service-graph series from client/server and producer/consumer span pairs.")
    span_metrics_dimensions: str = Field("", description="Comma-separated span or resource attributes added as labels to span metrics, e.g. 'http.request.method,deployment.environment.name'.")
    cardinality_limit: int = Field(5000, ge=0, description="Label sets each derived metric keeps per process; more go into an otel_metric_overflow=\"true\" series (0: no limit).")
    service_graph_wait: str = Field("10s", description="How long a client or server span waits for its other half before it counts as unpaired.")
    service_graph_max_pending: int = Field(100_000, ge=100, description="Unpaired client (and server) spans kept while they wait (by the main process, for all workers); the oldest are dropped beyond.")

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str) -> str:
        ns = parse_duration_ns(v)
        if not 1_000_000_000 <= ns <= 300_000_000_000 or 300_000_000_000 % ns:
            raise ValueError("must be between 1s and 5m and divide 5m evenly (e.g. 15s, 30s, 1m)")
        return v

    @field_validator("service_graph_wait")
    @classmethod
    def _wait(cls, v: str) -> str:
        if parse_duration_ns(v) <= 0:
            raise ValueError("must be positive")
        return v

    @property
    def resolution_ns(self) -> int:
        return parse_duration_ns(self.resolution)


class ServerConfig(_Section):
    log_level: str = Field("info", description="debug, info, warning or error.")
    demo: bool = Field(False, description="Send built-in demo traffic to the server's own OTLP port.")
    demo_rate: float = Field(5.0, gt=0, description="Demo requests per second.")

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be one of debug, info, warning, error")
        return v.lower()


class Config(_Section):
    """Everything ``spanlake serve`` needs, immutable once loaded."""

    storage: StorageConfig = StorageConfig()
    collector: CollectorConfig = CollectorConfig()
    query: QueryConfig = QueryConfig()
    server: ServerConfig = ServerConfig()
    metrics: MetricsConfig = MetricsConfig()


@dataclass(frozen=True)
class Setting:
    name: str  # flag without dashes; env SPANLAKE_<NAME>; YAML key
    section: str
    field: str
    metavar: str = ""

    @property
    def env(self) -> str:
        return "SPANLAKE_" + self.name.upper().replace("-", "_")

    @property
    def flag(self) -> str:
        return "--" + self.name

    @property
    def help(self) -> str:
        section = Config.model_fields[self.section].annotation
        return section.model_fields[self.field].description  # type: ignore[union-attr]

    @property
    def default(self) -> Any:
        section = Config.model_fields[self.section].annotation
        return section.model_fields[self.field].default  # type: ignore[union-attr]


SETTINGS: tuple[Setting, ...] = (
    Setting("data", "storage", "data_dir", "DIR"),
    Setting("catalog", "storage", "catalog", "URL"),
    Setting("data-path", "storage", "data_path", "PATH"),
    Setting("retention", "storage", "retention", "AGE"),
    Setting("memory-limit", "storage", "memory_limit", "SIZE"),
    Setting("threads", "storage", "threads", "N"),
    Setting("max-queue-spans", "storage", "max_queue_spans", "N"),
    Setting("commit-interval-ms", "storage", "commit_interval_ms", "MS"),
    Setting("commit-spacing-ms", "storage", "commit_spacing_ms", "MS"),
    Setting("otlp-grpc", "collector", "otlp_grpc", "HOST:PORT"),
    Setting("otlp-http", "collector", "otlp_http", "HOST:PORT"),
    Setting("max-message-size", "collector", "max_message_size", "SIZE"),
    Setting("workers", "collector", "workers", "N"),
    Setting("http", "query", "http", "HOST:PORT"),
    Setting("query-grpc", "query", "query_grpc", "HOST:PORT"),
    Setting("max-clock-skew-adjustment", "query", "max_clock_skew_adjustment", "AGE"),
    Setting("log-level", "server", "log_level", "LEVEL"),
    Setting("demo", "server", "demo", ""),
    Setting("demo-rate", "server", "demo_rate", "PER_SECOND"),
    Setting("metrics-resolution", "metrics", "resolution", "AGE"),
    Setting("span-metrics", "metrics", "span_metrics", "BOOL"),
    Setting("service-graph", "metrics", "service_graph", "BOOL"),
    Setting("span-metrics-dimensions", "metrics", "span_metrics_dimensions", "KEYS"),
    Setting("metrics-cardinality-limit", "metrics", "cardinality_limit", "N"),
    Setting("service-graph-wait", "metrics", "service_graph_wait", "AGE"),
    Setting("service-graph-max-pending", "metrics", "service_graph_max_pending", "N"),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def load_config(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    yaml_path: str | os.PathLike[str] | None = None,
) -> Config:
    """Merge defaults, YAML, environment and flags (flags whose value is None count as not given)."""
    values: dict[tuple[str, str], tuple[Any, str]] = {}
    if yaml_path is not None:
        path = Path(yaml_path)
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"config file {path}: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"config file {path}: expected a mapping of setting names to values")
        for key, value in doc.items():
            setting = _BY_NAME.get(str(key).replace("_", "-"))
            if setting is None:
                raise ConfigError(f"config file {path}: unknown setting {key!r} (known: {', '.join(_BY_NAME)})")
            values[(setting.section, setting.field)] = (value, f"config file {path}")
    for setting in SETTINGS:
        if environ is not None and setting.env in environ:
            values[(setting.section, setting.field)] = (environ[setting.env], f"environment variable {setting.env}")
    for name, value in (flags or {}).items():
        if value is None:
            continue
        setting = _BY_NAME[name.replace("_", "-")]
        values[(setting.section, setting.field)] = (value, f"flag {setting.flag}")

    sections: dict[str, dict[str, Any]] = {}
    for (section, field_name), (value, _) in values.items():
        sections.setdefault(section, {})[field_name] = value
    try:
        return Config.model_validate(sections)
    except ValidationError as e:
        err = e.errors()[0]
        section, field_name = err["loc"][0], err["loc"][1] if len(err["loc"]) > 1 else ""
        source = values.get((str(section), str(field_name)), (None, "defaults"))[1]
        setting = next((s for s in SETTINGS if s.section == section and s.field == field_name), None)
        label = setting.name if setting else f"{section}.{field_name}"
        raise ConfigError(f"setting {label!r} from {source}: {err['msg']}") from None
