"""The CLI as a user runs it: a failure must not print the settings' secrets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

CANARY = "canary-password-4d9f"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failing_command_does_not_print_the_database_password():
    env = {
        **os.environ,
        "PLANTOPS_MYSQL_HOST": "127.0.0.1",
        "PLANTOPS_MYSQL_PORT": str(closed_port()),
        "PLANTOPS_MYSQL_PASSWORD": CANARY,
        "COLUMNS": "200",
    }
    cli = Path(sys.executable).parent / "plantops-data"
    result = subprocess.run(
        [str(cli), "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert CANARY not in result.stdout + result.stderr
