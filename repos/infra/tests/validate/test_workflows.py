"""GitHub Actions workflows: actionlint clean, and every command they run is a make target
that exists in the Makefile it names (so CI runs nothing that cannot run here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from .conftest import REPOS, UMBRELLA, run, tool

pytestmark = pytest.mark.validate


def all_workflows() -> list[Path]:
    found = list((UMBRELLA / ".github" / "workflows").glob("*.y*ml"))
    found += list(REPOS.glob("*/.github/workflows/*.y*ml"))
    return sorted(found)


def repo_root(workflow: Path) -> Path:
    return workflow.parents[2]


def make_targets(makefile: Path) -> set[str]:
    if not makefile.exists():
        return set()
    targets = re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", makefile.read_text(), flags=re.MULTILINE)
    return set(targets)


def run_commands(workflow: Path) -> list[str]:
    data = yaml.safe_load(workflow.read_text())
    return [
        step["run"]
        for job in data.get("jobs", {}).values()
        for step in job.get("steps", [])
        if "run" in step
    ]


def checkout_paths(workflow: Path) -> dict[str, Path]:
    """Where a multi-repo workflow checks its siblings out: `path: infra` -> repos/infra."""
    paths = {}
    for match in re.finditer(r"path:\s*([\w-]+)", workflow.read_text()):
        paths[match.group(1)] = REPOS / match.group(1)
    return paths


def make_calls(command: str) -> list[tuple[str | None, str]]:
    """(directory given with -C or None, target) for each `make ...` of a step's commands.

    Commands may be chained with `&&` or on several lines; each one must be `make`.
    """
    calls = []
    for part in re.split(r"&&|\n", command.replace("\\\n", " ")):
        argv = shlex.split(part)
        if not argv:
            continue
        if argv[0] == "sudo":
            argv = argv[1:]
        assert argv and argv[0] == "make", (
            f"a workflow step runs {part.strip()!r}: use a make target"
        )
        directory, targets, args = None, [], iter(argv[1:])
        for arg in args:
            if arg == "-C":
                directory = next(args)
            elif not arg.startswith("-") and "=" not in arg:
                targets.append(arg)
        assert targets, f"{part.strip()!r} names no target"
        calls += [(directory, t) for t in targets]
    return calls


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda p: str(p.relative_to(UMBRELLA)))
def test_actionlint_passes(workflow: Path):
    result = run([tool("actionlint"), "-no-color", workflow])
    assert result.returncode == 0, result.output


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda p: str(p.relative_to(UMBRELLA)))
def test_every_step_runs_an_existing_make_target(workflow: Path):
    root = repo_root(workflow)
    siblings = checkout_paths(workflow)
    for command in run_commands(workflow):
        for directory, target in make_calls(command):
            if directory is None:
                makefile_dir = root
            elif directory in siblings:
                makefile_dir = siblings[directory]
            else:
                makefile_dir = root / directory
            makefile = makefile_dir / "Makefile"
            assert target in make_targets(makefile), (
                f"{workflow.name} runs `make {target}`, which {makefile} does not define"
            )


def test_actionlint_refuses_a_broken_workflow(tmp_path):
    broken = tmp_path / "ci.yml"
    broken.write_text(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: make test\n        if: ${{ github.evnt_name == 'push' }}\n"
    )
    result = run([tool("actionlint"), "-no-color", broken])
    assert result.returncode != 0
    assert "evnt_name" in result.output


def test_a_step_that_is_not_a_make_target_is_refused():
    assert make_calls("make -C infra setup && make -C webapp test") == [
        ("infra", "setup"),
        ("webapp", "test"),
    ]
    with pytest.raises(AssertionError, match="use a make target"):
        make_calls("make setup && pip install -r requirements.txt")


def test_every_component_has_a_ci_workflow():
    missing = [
        c.name
        for c in REPOS.iterdir()
        if c.is_dir() and not (c / ".github/workflows/ci.yml").exists()
    ]
    assert not missing, f"components without .github/workflows/ci.yml: {missing}"
