"""Real Ray processes for tests, started and stopped by the tests themselves: a private, short
Ray temp dir, loopback only, token authentication with a token of our own; a head node started
with ``ray start --head`` (the way a user starts a cluster) and stopped by its process group.
Used by the sweep tests and the benchmark's process-pool-vs-Ray test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PY = sys.executable


@pytest.fixture
def ray_env() -> Iterator[dict]:
    """Environment for a Ray subprocess: a private, short Ray temp dir; loopback only.
    Anything still running with that temp dir in its command line is killed afterwards."""
    tmp = tempfile.mkdtemp(prefix="mnray", dir="/tmp")
    env = dict(
        os.environ,
        RAY_TMPDIR=tmp,
        OMP_NUM_THREADS="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        # Token authentication with a token of our own (not ~/.ray/auth_token); the head node
        # and the driver of an --address test share it.
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("RAY_ADDRESS", None)
    yield env
    kill_leftovers(tmp)
    subprocess.run(["rm", "-rf", tmp], check=False)


def kill_leftovers(tmp: str) -> None:
    """Kill (by PID) processes still carrying our private Ray temp dir in their command line."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if tmp in cmd and int(pid_dir.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid_dir.name), signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def head_node(env: dict, num_cpus: int = 2) -> Iterator[str]:
    """``ray start --head`` on loopback with ``env`` (from :func:`ray_env`); yields its
    address ``127.0.0.1:PORT`` and stops its process group afterwards."""
    port = free_port()
    head = subprocess.Popen(
        [
            str(Path(PY).parent / "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--num-cpus={num_cpus}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--temp-dir={env['RAY_TMPDIR']}",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the head's daemons keep this process group: stopped below
    )
    try:
        out, _ = head.communicate(timeout=180)
        assert head.returncode == 0, out[-3000:]
        yield f"127.0.0.1:{port}"
    finally:
        stop_process_group(head.pid)


def stop_process_group(pgid: int) -> None:
    """SIGTERM the head node's process group, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
