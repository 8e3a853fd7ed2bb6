"""Start, probe and stop the server processes of the local stack and of the test fixtures."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A server could not be started or did not become healthy."""


# Ports free_port() has handed out in this process: a fixture draws several before its
# servers bind them, and the kernel offers a port again as soon as its probe socket
# closes, so without this two services could be told the same port (a CI run gave
# MySQL and the image mirror one port, and `make up` failed).
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, never one this process
    was given before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def free_ports(count: int) -> list[int]:
    """`count` different free ports on loopback."""
    return [free_port() for _ in range(count)]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tool_path(name: str) -> str:
    """Locate a server binary: next to this interpreter, in the infra venv, or on PATH.

    The fixtures run inside every component's virtualenv, but the server binaries
    (`weed`, `mlflow`) are installed once, in the infra component's own `.venv`.
    """
    # The infra venv first: it has the server extras (pymysql, boto3) that a
    # component's own `mlflow` client install may lack.
    candidates = [
        Path(__file__).resolve().parents[2] / ".venv" / "bin" / name,
        Path(sys.executable).parent / name,
    ]
    if os.environ.get("PLANTOPS_TOOLS_BIN"):
        candidates.insert(0, Path(os.environ["PLANTOPS_TOOLS_BIN"]) / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ServiceError(
        f"'{name}' not found: run `make setup` in repos/infra (it installs the stack's servers)."
    )


@dataclass
class ManagedProcess:
    """A server process started in its own process group, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, timeout: float = 30.0) -> None:
        stop_pid(self.process.pid, timeout, reap=self.process.poll)
        self.process.wait(timeout=5)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spawn(
    name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    """Start `argv` detached from our terminal and process group, logging to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            # Its own session: `stop` can then end the whole tree (mlflow's workers too).
            start_new_session=True,
        )
    return ManagedProcess(name=name, process=process, log_path=log_path)


def wait_until(
    check: Callable[[], bool], what: str, timeout: float, proc: ManagedProcess | None = None
) -> None:
    """Poll `check` until it holds; fail early and clearly if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.process.poll() is not None:
            raise ServiceError(
                f"{what} exited with code {proc.process.returncode} before becoming healthy.\n"
                f"Last lines of {proc.log_path}:\n{proc.log_tail()}"
            )
        time.sleep(0.25)
    tail = f"\nLast lines of {proc.log_path}:\n{proc.log_tail()}" if proc else ""
    raise ServiceError(f"{what} was not healthy after {timeout:.0f} s.{tail}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


def stop_pid(pid: int, timeout: float = 30.0, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `timeout`.

    `reap` lets the parent collect its child, so a finished leader is not kept as a zombie.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
