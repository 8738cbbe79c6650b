"""The ``spanlake`` command: ``spanlake serve`` runs the server; ``spanlake version``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Sequence

from spanlake.config import SETTINGS, ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanlake", description="Spanlake: a tracing backend on DuckDB.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run collector, store, query API and UI in one process",
        description="Run Spanlake. Every flag can also be set as SPANLAKE_<NAME> in the environment "
        "or as <name>: in the YAML file given by --config; flags win over the environment, "
        "which wins over the file.",
    )
    serve.add_argument("--config", metavar="FILE", default=None, help="YAML file of settings.")
    for s in SETTINGS:
        if s.name == "demo":
            serve.add_argument("--demo", action="store_const", const=True, default=None,
                               help=f"{s.help} (env {s.env})")
            continue
        default = f" Default: {s.default}." if s.default is not None else ""
        serve.add_argument(s.flag, metavar=s.metavar, default=None, help=f"{s.help}{default} (env {s.env})")
    sub.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        from spanlake import __version__

        print(__version__)
        return 0
    flags = {s.name: getattr(args, s.name.replace("-", "_")) for s in SETTINGS}
    yaml_path = args.config or os.environ.get("SPANLAKE_CONFIG")
    try:
        config = load_config(flags, os.environ, yaml_path)
    except ConfigError as e:
        print(f"spanlake: {e}", file=sys.stderr)
        return 2
    if config.collector.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Must be set before prometheus_client is imported, in this process and the workers.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="spanlake-metrics-")
    from spanlake.server import serve

    return serve(config)


if __name__ == "__main__":
    raise SystemExit(main())
