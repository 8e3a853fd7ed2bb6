"""Every Dockerfile of the project: hadolint clean, pinned base, non-root, health-checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import COMPONENTS, INFRA, REPOS, run, tool

pytestmark = pytest.mark.validate

# Images that serve HTTP and so must carry a HEALTHCHECK.
SERVICES = {"inference-api", "webapp", "mlflow"}


def all_dockerfiles() -> list[Path]:
    found = [p for p in REPOS.glob("*/Dockerfile")] + list((INFRA / "images").glob("*/Dockerfile"))
    return sorted(found)


def test_every_component_has_a_dockerfile():
    missing = [c for c in COMPONENTS if not (REPOS / c / "Dockerfile").exists()]
    assert not missing, f"components without a Dockerfile: {missing}"


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: str(p.relative_to(REPOS)))
def test_hadolint_passes(dockerfile: Path):
    result = run([tool("hadolint"), dockerfile])
    assert result.returncode == 0, result.output


@pytest.mark.parametrize("dockerfile", all_dockerfiles(), ids=lambda p: str(p.relative_to(REPOS)))
def test_image_is_multi_stage_pinned_and_non_root(dockerfile: Path):
    text = dockerfile.read_text()
    for base in re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE):
        if base.lower() in {"scratch"} or not re.search(r"[:@]", base):
            stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.MULTILINE | re.I)
            assert base in stages, f"{dockerfile}: base image {base} is not pinned"
        else:
            assert not base.endswith(":latest"), f"{dockerfile}: {base}"
    stages = re.findall(r"^FROM\s", text, flags=re.MULTILINE)
    assert len(stages) >= 2, f"{dockerfile}: build tools belong in a separate build stage"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, f"{dockerfile}: no USER: the container would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}, f"{dockerfile}: runs as {users[-1]}"
    if dockerfile.parent.name in SERVICES:
        assert "HEALTHCHECK" in text, f"{dockerfile}: a service image needs a HEALTHCHECK"


def test_hadolint_refuses_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = run([tool("hadolint"), bad])
    assert result.returncode != 0
    assert "DL3007" in result.output or "DL3008" in result.output
