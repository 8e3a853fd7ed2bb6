"""Where the stack's settings come from: environment, then local overrides, then defaults."""

import os
import subprocess

import pytest

pytestmark = pytest.mark.unit


def read_setting(repo_root, name: str, env: dict[str, str]) -> str:
    script = f'source scripts/stack-env.sh && printf %s "${name}"'
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLANTOPS_")}
    result = subprocess.run(
        ["bash", "-c", script], cwd=repo_root, env={**clean, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_defaults_come_from_the_documented_file(repo_root):
    assert read_setting(repo_root, "PLANTOPS_S3_PORT", {}) == "9000"
    assert read_setting(repo_root, "PLANTOPS_MYSQL_ADMIN_PASSWORD", {}) == ""


def test_the_environment_wins_over_the_file(repo_root):
    assert read_setting(repo_root, "PLANTOPS_S3_PORT", {"PLANTOPS_S3_PORT": "19123"}) == "19123"


def test_state_dir_defaults_to_the_checkout(repo_root):
    assert read_setting(repo_root, "PLANTOPS_STATE_DIR", {}) == str(repo_root / ".stack")


def test_no_real_secret_is_committed_in_the_env_file(repo_root):
    text = (repo_root / "repos/infra/local/stack.env").read_text()
    assert "LOCAL-DEVELOPMENT DEFAULTS ONLY" in text
    for line in text.splitlines():
        if ("PASSWORD=" in line or "SECRET" in line or "KEY=" in line) and "=" in line:
            value = line.split("=", 1)[1]
            assert value == "" or "local-dev" in value, line
