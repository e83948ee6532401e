"""Run ``millinet serve`` as a child process on loopback (for tests and benchmarks)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServiceProcess:
    url: str
    pid: int
    log_path: Path | None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_service(
    folder: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: str | Path | None = None,
    log_level: str = "info",
    startup_timeout_s: float = 30.0,
) -> Iterator[ServiceProcess]:
    """Start ``millinet serve FOLDER`` on ``host:port`` (a free port by default), wait for
    ``/healthz``, yield its URL and pid, and stop it (SIGTERM, then SIGKILL) afterwards."""
    import httpx

    port = port or free_port(host)
    cmd = [sys.executable, "-m", "millinet.experiments.cli", "serve", str(folder)]
    cmd += ["--host", host, "--port", str(port), "--log-level", log_level]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`{' '.join(cmd)}` exited with status {proc.returncode}")
            try:
                if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"service did not answer /healthz within {startup_timeout_s} s")
            time.sleep(0.1)
        yield ServiceProcess(url, proc.pid, Path(log_path) if log_path else None)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()
