"""Process handling of the stack: ports, and stopping a whole process tree."""

import subprocess
import sys

import pytest

from plantops_infra.processes import free_port, free_ports, pid_alive, port_open, spawn, stop_pid

pytestmark = pytest.mark.unit


def test_free_port_is_not_listening():
    assert not port_open("127.0.0.1", free_port())


def test_free_ports_are_all_different_and_free():
    # A stack told one port for two services cannot start.
    for _ in range(50):
        ports = free_ports(4)
        assert len(set(ports)) == 4, ports
        assert not any(port_open("127.0.0.1", port) for port in ports)


def test_stop_pid_ends_the_process_and_its_children(tmp_path):
    # A parent that starts a child which ignores nothing: both must go.
    script = (
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    proc = spawn("sleeper", [sys.executable, "-c", script], tmp_path / "sleeper.log")
    for _ in range(100):
        text = (tmp_path / "sleeper.log").read_text().strip()
        if text:
            break
        subprocess.run(["sleep", "0.05"], check=True)
    child = int(text)
    assert pid_alive(proc.pid) and pid_alive(child)

    stop_pid(proc.pid, timeout=5, reap=proc.process.poll)

    assert not pid_alive(proc.pid)
    for _ in range(50):
        if not pid_alive(child):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert not pid_alive(child)
