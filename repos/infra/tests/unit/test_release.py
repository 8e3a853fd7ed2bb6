"""`make release COMPONENT=… VERSION=…` (scripts/release.sh) on a throwaway git repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "release.sh"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def umbrella(tmp_path: Path) -> Path:
    repo = tmp_path / "umbrella"
    (repo / "repos/infra/scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "repos/infra/scripts/release.sh")
    (repo / "repos/webapp").mkdir()
    (repo / "repos/webapp/pyproject.toml").write_text('[project]\nname = "w"\nversion = "0.1.0"\n')
    (repo / "repos/webapp/CHANGELOG.md").write_text(
        "# Changelog\n\n## Unreleased\n\n- Feedback form.\n"
    )
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "start")
    return repo


def release(repo: Path, component: str, version: str) -> subprocess.CompletedProcess:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        ["bash", str(repo / "repos/infra/scripts/release.sh"), component, version],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_release_bumps_the_version_writes_the_changelog_and_tags(umbrella: Path):
    result = release(umbrella, "webapp", "0.2.0")
    assert result.returncode == 0, result.stderr
    assert 'version = "0.2.0"' in (umbrella / "repos/webapp/pyproject.toml").read_text()
    changelog = (umbrella / "repos/webapp/CHANGELOG.md").read_text()
    assert changelog.index("## Unreleased") < changelog.index("## 0.2.0 - ")
    assert changelog.index("## 0.2.0 - ") < changelog.index("- Feedback form.")
    assert git(umbrella, "tag").split() == ["webapp-v0.2.0"]
    assert git(umbrella, "status", "--porcelain") == ""


@pytest.mark.parametrize("version", ["0.1.0", "0.0.9", "1.0", "v1.0.0"])
def test_a_version_that_is_not_a_step_up_is_refused(umbrella: Path, version: str):
    result = release(umbrella, "webapp", version)
    assert result.returncode == 2
    assert git(umbrella, "tag") == ""


def test_uncommitted_changes_block_a_release(umbrella: Path):
    (umbrella / "repos/webapp/new.py").write_text("x = 1\n")
    result = release(umbrella, "webapp", "0.2.0")
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr


def test_an_unknown_component_is_refused(umbrella: Path):
    assert release(umbrella, "nope", "1.0.0").returncode == 2
