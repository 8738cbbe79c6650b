"""``SpanlakeServer``: a real ``spanlake serve`` subprocess for end-to-end tests.

It runs ``python -m spanlake serve`` on a temporary data directory with every address on
``127.0.0.1:0``, reads the addresses the server prints, and polls ``/readyz``, failing fast if
the process exits. ``kill(sig)`` and ``restart()`` support crash tests; on exit it terminates,
waits, kills, and prints the server's log when asked to (failed tests).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import httpx

T = TypeVar("T")

_ADDR = re.compile(r"^spanlake: (\S+) listening on (\S+)$")


class ServerFailed(RuntimeError):
    pass


class SpanlakeServer:
    def __init__(self, data_dir: Path, *extra_args: str, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.addresses: dict[str, str] = {}
        self.log_lines: list[str] = []
        self._reader: threading.Thread | None = None

    # -- addresses ------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return "http://" + self.addresses["http"]

    @property
    def otlp_grpc(self) -> str:
        return self.addresses["otlp-grpc"]

    @property
    def otlp_http(self) -> str:
        return "http://" + self.addresses["otlp-http"]

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "SpanlakeServer":
        cmd = [
            sys.executable, "-m", "spanlake", "serve",
            "--data", str(self.data_dir),
            "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
            "--http", "127.0.0.1:0", "--query-grpc", "127.0.0.1:0",
            *self.extra_args,
        ]
        env = {**os.environ, **self.env}
        self.addresses = {}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        found = threading.Event()
        expected = {"otlp-grpc", "otlp-http", "http"}

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                self.log_lines.append(line)
                m = _ADDR.match(line)
                if m:
                    self.addresses[m.group(1)] = m.group(2)
                    if expected <= self.addresses.keys():
                        found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise ServerFailed("server did not start:\n" + self.log())
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed("server exited during startup:\n" + self.log())
            try:
                if httpx.get(self.http_url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed("server never became ready:\n" + self.log())
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(60)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode

    def restart(self) -> "SpanlakeServer":
        self.stop()
        return self.start()

    def log(self) -> str:
        return "\n".join(self.log_lines[-400:])

    def __enter__(self) -> "SpanlakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
