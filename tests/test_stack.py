"""`make up`, `make status`, `make down`: the local stack on loopback, without Docker.

The stack under test gets its own state folder and free ports (its MySQL port
included, so it also exercises the private-mariadbd path), so it never touches
a `make up` stack that may be running on the default ports.
"""

import os
import subprocess
import urllib.request
from pathlib import Path

import pytest
from plantops_infra.processes import free_ports, pid_alive

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTOPS_")}
    s3, mysql, mlflow, mirror = free_ports(4)
    env.update(
        PLANTOPS_STATE_DIR=str(tmp_path / "stack"),
        PLANTOPS_S3_PORT=str(s3),
        PLANTOPS_MYSQL_PORT=str(mysql),
        PLANTOPS_MLFLOW_PORT=str(mlflow),
        PLANTOPS_MIRROR_PORT=str(mirror),
    )
    return env


def make(target: str, env: dict[str, str], root: Path, check: bool = True):
    return subprocess.run(
        ["make", "-s", target], cwd=root, env=env, capture_output=True, text=True, check=check
    )


def recorded_pids(state_dir: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (state_dir / "pids").glob("*.pid")}


def test_up_status_down(repo_root, stack_env):
    state = Path(stack_env["PLANTOPS_STATE_DIR"])
    try:
        make("up", stack_env, repo_root)
        pids = recorded_pids(state)
        assert set(pids) == {"s3", "mysql", "mlflow", "mirror"}

        # A second `make up` is harmless: nothing restarted.
        make("up", stack_env, repo_root)
        assert recorded_pids(state) == pids

        status = make("status", stack_env, repo_root).stdout
        for service in ("s3", "mysql", "mlflow", "mirror"):
            assert f"{service}" in status
        assert "DOWN" not in status

        mirror = f"http://127.0.0.1:{stack_env['PLANTOPS_MIRROR_PORT']}/grass/00000007.jpg"
        with urllib.request.urlopen(mirror) as response:
            assert response.read(2) == b"\xff\xd8"

        env_file = (state / "env").read_text()
        assert f"PLANTOPS_S3_ENDPOINT=127.0.0.1:{stack_env['PLANTOPS_S3_PORT']}" in env_file
    finally:
        pids = recorded_pids(state) if (state / "pids").exists() else {}
        make("down", stack_env, repo_root, check=False)

    assert pids, "make up recorded no process"
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []
    after = make("status", stack_env, repo_root, check=False)
    assert after.returncode != 0
    assert after.stdout.count("DOWN") == 3  # s3, mysql, mlflow; the mirror is simply not run
