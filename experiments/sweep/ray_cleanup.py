"""Ray processes a local sweep started are stopped, however the sweep ends.

``ray.shutdown()`` stops a local Ray instance when the driver ends normally or on Ctrl-C. A
driver killed with SIGKILL cannot: its raylet and GCS follow it, but some of their children
(the dashboard and runtime-env agents) are left running, re-parented to init and renamed
(``ray::DashboardAgent``). So the driver records the instance's session folder in
``<sweep folder>/ray_session.json``; the next run or ``--resume`` of the sweep finds the
processes that still hold files open in that session (Linux ``/proc``), stops them (SIGTERM,
then SIGKILL) and says which; where there is no ``/proc`` it names the session instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from pathlib import Path

from millinet.envs.errors import MillinetError
from millinet.envs.files import write_text_atomic


class SweepRunningError(MillinetError):
    """Another driver is running the same sweep."""


SESSION_FILE = "ray_session.json"
"""In the sweep folder while a local Ray instance runs: its session folder and the driver."""


def session_processes(session_dir: str) -> list[int]:
    """PIDs of the processes (this one excepted) that hold a file open in ``session_dir`` or
    name it on their command line: a Ray instance's GCS, raylet, agents and workers (their
    titles change, their log files stay open). Linux ``/proc``; empty elsewhere."""
    proc = Path("/proc")
    if not session_dir or not proc.is_dir():
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if session_dir in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd).startswith(session_dir):
                    found.append(int(entry.name))
                    break
        except OSError:  # gone, or not ours to inspect
            continue
    return sorted(found)


def stop_processes(pids: list[int], grace_s: float = 5.0) -> list[int]:
    """SIGTERM ``pids``, SIGKILL those still alive after ``grace_s``; returns the PIDs that
    are still running after that (none, normally)."""

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        stat = Path(f"/proc/{pid}/stat")  # a zombie is gone for our purpose
        return not (stat.is_file() and stat.read_text().split(")")[-1].split()[0] == "Z")

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [p for p in pids if alive(p)]
        if not pids:
            break
    return pids


def _read_session(exp: Path) -> dict | None:
    try:
        info = json.loads((exp / SESSION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _is_sweep_driver(pid: int) -> bool:
    """Whether ``pid`` is a running ``millinet sweep`` (or sweep-running Python) process."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return pid != os.getpid() and "sweep" in cmd


def clean_up_leftovers(exp: Path) -> None:
    """Before a local Ray instance starts for the sweep in ``exp``: stop the Ray processes of
    an earlier driver of this sweep that was killed, and say so; refuse when that driver is
    still running (two drivers on one sweep folder)."""
    info = _read_session(exp)
    if info is None:
        return
    session, driver = str(info.get("session_dir") or ""), info.get("driver_pid")
    if info.get("host") != socket.gethostname():
        print(
            f"note: {exp / SESSION_FILE} names a Ray session on {info.get('host')} "
            f"({session}); check that host for leftover Ray processes",
            flush=True,
        )
    elif isinstance(driver, int) and _is_sweep_driver(driver):
        raise SweepRunningError(
            f"{exp}: the sweep is already running (driver PID {driver}, Ray session "
            f"{session}); wait for it or stop it"
        )
    else:
        leftovers = session_processes(session)
        if leftovers:
            survivors = stop_processes(leftovers)
            print(
                f"cleaned up {len(leftovers) - len(survivors)} Ray process(es) left by a "
                f"killed sweep driver (PID {driver}): PIDs {', '.join(map(str, leftovers))} "
                f"of session {session}"
                + (f"; still running: PIDs {survivors}" if survivors else ""),
                flush=True,
            )
    (exp / SESSION_FILE).unlink(missing_ok=True)


def record_session(exp: Path, session_dir: str | None) -> None:
    """Note the local Ray instance's session folder (see :func:`clean_up_leftovers`)."""
    if not session_dir:
        return
    exp.mkdir(parents=True, exist_ok=True)
    info = {"session_dir": session_dir, "driver_pid": os.getpid(), "host": socket.gethostname()}
    write_text_atomic(exp / SESSION_FILE, json.dumps(info) + "\n")


def finish_session(exp: Path, session_dir: str | None) -> None:
    """After ``ray.shutdown()``: stop any process of the session that outlived it."""
    stragglers = session_processes(session_dir or "")
    if stragglers:
        survivors = stop_processes(stragglers)
        print(
            f"stopped {len(stragglers) - len(survivors)} Ray process(es) that outlived the "
            f"shutdown: PIDs {', '.join(map(str, stragglers))}"
            + (f"; still running: PIDs {survivors}" if survivors else ""),
            flush=True,
        )
    (exp / SESSION_FILE).unlink(missing_ok=True)
