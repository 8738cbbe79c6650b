"""Load DuckDB's DuckLake extensions from their PyPI wheels; nothing is downloaded at run time.

Each ``duckdb-extension-<name>`` wheel ships ``<package>/extensions/v<duckdb version>/<name>.duckdb_extension``.
An extension only loads into the DuckDB version it was built for, so the path includes
``duckdb.__version__`` and a mismatch fails at connect time with a clear message.
"""

from __future__ import annotations

import importlib
import os

import duckdb

#: Extension name -> the Python package of the wheel that carries it.
EXTENSION_PACKAGES: dict[str, str] = {
    "ducklake": "duckdb_extension_ducklake",
    "sqlite_scanner": "duckdb_extension_sqlite_scanner",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}


class ExtensionNotFound(RuntimeError):
    """An extension wheel is missing or was built for another DuckDB version."""


def extension_path(name: str) -> str:
    """Path of the ``.duckdb_extension`` file of ``name`` inside its installed wheel."""
    package = EXTENSION_PACKAGES[name]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ExtensionNotFound(f"DuckDB extension {name!r} needs the wheel {package.replace('_', '-')}") from exc
    base = os.path.dirname(os.path.abspath(module.__file__ or ""))
    path = os.path.join(base, "extensions", f"v{duckdb.__version__}", f"{name}.duckdb_extension")
    if not os.path.isfile(path):
        raise ExtensionNotFound(
            f"{path} not found: the {package} wheel does not match duckdb=={duckdb.__version__}"
        )
    return path


def connect(*, memory_limit: str, threads: int, extensions: tuple[str, ...] = tuple(EXTENSION_PACKAGES)) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the given extensions loaded from their wheels."""
    con = duckdb.connect(
        ":memory:",
        config={
            "allow_unsigned_extensions": "true",
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "memory_limit": memory_limit,
            "threads": str(threads),
        },
    )
    try:
        for name in extensions:
            # LOAD takes no bound parameters; the path comes from the installed wheel, not a user.
            con.execute(f"LOAD '{extension_path(name).replace(chr(39), chr(39) * 2)}'")
    except BaseException:
        con.close()
        raise
    return con
