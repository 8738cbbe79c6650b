"""A throwaway PostgreSQL cluster for DuckLake's PostgreSQL catalog.

``SPANLAKE_TEST_PG_DSN`` (a libpq conninfo string of a server where the user may create
databases) is used when set. Otherwise the Debian binaries under /usr/lib/postgresql/*/bin make
a cluster in a temporary folder, listening on 127.0.0.1 on a free port with its socket in that
folder; as root, the cluster runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from typing import Iterator

PG_DSN_ENV = "SPANLAKE_TEST_PG_DSN"


class PostgresUnavailable(RuntimeError):
    pass


def find_pg_bin() -> str | None:
    """The newest /usr/lib/postgresql/<version>/bin that holds initdb and pg_ctl."""
    candidates = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(d, "initdb"))]
    if not candidates:
        initdb = shutil.which("initdb")
        return os.path.dirname(initdb) if initdb and shutil.which("pg_ctl") else None
    return max(candidates, key=lambda d: [int(x) for x in d.split("/")[-2].split(".") if x.isdigit()] or [0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempCluster:
    """initdb + pg_ctl start in a temporary folder; :meth:`stop` removes it."""

    def __init__(self, bin_dir: str) -> None:
        self.bin_dir = bin_dir
        self.root = tempfile.mkdtemp(prefix="spanlake-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.root, "log"), "-w", "-t", "30", "start")
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [os.path.join(self.bin_dir, tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def server_dsn() -> Iterator[str]:
    """Yield the conninfo of a PostgreSQL server (from the environment or a temporary cluster)."""
    if os.environ.get(PG_DSN_ENV):
        yield os.environ[PG_DSN_ENV]
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise PostgresUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found; apt-get install postgresql")
    cluster = TempCluster(bin_dir)
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


_counter = itertools.count()


def new_database(dsn: str) -> str:
    """Create an empty database on the server and return a conninfo string for it."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"spanlake_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    # Keyword form (host=... dbname=...), which DuckLake's "postgres:" catalog string takes.
    return make_conninfo(**{**conninfo_to_dict(dsn), "dbname": name})
