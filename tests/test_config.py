"""Configuration sources, precedence, validation messages, and documentation of every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlake.cli import build_parser
from spanlake.config import SETTINGS, ConfigError, load_config, parse_duration_ns

ROOT = Path(__file__).resolve().parents[1]


def test_defaults() -> None:
    c = load_config()
    assert c.storage.data_dir == "./spanlake-data"
    assert c.collector.otlp_grpc == "0.0.0.0:4317"
    assert c.collector.otlp_http == "0.0.0.0:4318"
    assert c.query.http == "0.0.0.0:16686"
    assert c.storage.retention_ns == 7 * 86_400 * 10**9
    assert c.collector.max_message_bytes == 16 * 1024 * 1024


def test_precedence_flags_over_env_over_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "spanlake.yaml"
    cfg.write_text("data: /from/yaml\nretention: 3d\nlog_level: debug\n")
    env = {"SPANLAKE_RETENTION": "2d", "SPANLAKE_HTTP": "127.0.0.1:9999"}
    c = load_config({"retention": "1d", "data": None}, env, cfg)
    assert c.storage.data_dir == "/from/yaml"
    assert c.storage.retention == "1d"
    assert c.query.http == "127.0.0.1:9999"
    assert c.server.log_level == "debug"


@pytest.mark.parametrize(
    "flags,env,needle",
    [
        ({"retention": "soon"}, {}, "'retention' from flag --retention"),
        ({}, {"SPANLAKE_OTLP_GRPC": "nope"}, "environment variable SPANLAKE_OTLP_GRPC"),
        ({"workers": "0"}, {}, "'workers' from flag --workers"),
        ({"log-level": "loud"}, {}, "log-level"),
    ],
)
def test_errors_name_setting_and_source(flags, env, needle) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(flags, env)
    assert needle in str(e.value)


def test_yaml_unknown_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retension: 1d\n")
    with pytest.raises(ConfigError, match="unknown setting 'retension'"):
        load_config(yaml_path=cfg)


def test_durations() -> None:
    assert parse_duration_ns("1h30m") == 5400 * 10**9
    assert parse_duration_ns("250ms") == 250 * 10**6
    with pytest.raises(ValueError):
        parse_duration_ns("7 days")


def test_every_setting_has_a_flag_help_and_readme_entry() -> None:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # noqa: SLF001
    flags = {opt for a in serve._actions for opt in a.option_strings}  # noqa: SLF001
    readme = (ROOT / "README.md").read_text()
    for s in SETTINGS:
        assert s.flag in flags
        assert s.help
        assert f"`{s.flag}`" in readme, f"README does not document {s.flag}"
        assert s.env in readme, f"README does not document {s.env}"
