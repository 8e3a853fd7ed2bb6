"""`make split` publishes the real multi-repo form: five repos plus an umbrella of submodules."""

import filecmp
import os
import subprocess
from pathlib import Path

import pytest

from conftest import git

pytestmark = pytest.mark.integration

COMPONENTS = ["ml-training", "inference-api", "webapp", "orchestration", "infra"]


def tracked_files(root: Path) -> set[str]:
    return set(git("ls-files", cwd=root).splitlines())


def test_split_then_recursive_clone_reproduces_the_monorepo(repo_root, tmp_path):
    # The split publishes HEAD, so compare against a clean clone of HEAD.
    source = tmp_path / "source"
    git("clone", "-q", str(repo_root), str(source), cwd=tmp_path)
    dest = tmp_path / "published"
    dest.mkdir()
    subprocess.run(["make", "-s", "split", f"DEST={dest}"], cwd=source, check=True)

    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["plantops.git"] + [f"plantops-{c}.git" for c in COMPONENTS]
    )

    clone = tmp_path / "clone"
    git(
        "-c", "protocol.file.allow=always",
        "clone", "-q", "--recurse-submodules", str(dest / "plantops.git"), str(clone),
        cwd=tmp_path,
    )  # fmt: skip

    status = git("submodule", "status", cwd=clone).splitlines()
    assert sorted(line.split()[1] for line in status) == [f"repos/{c}" for c in sorted(COMPONENTS)]
    assert not any(line.startswith(("-", "+", "U")) for line in status), status

    expected = tracked_files(source)
    published = tracked_files(clone) - {f"repos/{c}" for c in COMPONENTS}
    for component in COMPONENTS:
        published |= {f"repos/{component}/{f}" for f in tracked_files(clone / "repos" / component)}
    assert published == expected
    mismatched = [f for f in expected if not same_entry(source / f, clone / f)]
    assert mismatched == []


def same_entry(a: Path, b: Path) -> bool:
    """Same bytes, or for a link (each component's `contracts` -> src/...) the same target."""
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    return filecmp.cmp(a, b, shallow=False)


def test_split_refuses_a_folder_that_is_not_empty(repo_root, tmp_path):
    (tmp_path / "something").write_text("keep me")
    result = subprocess.run(
        ["bash", "scripts/split.sh", str(tmp_path)], cwd=repo_root, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "not empty" in result.stderr
    assert (tmp_path / "something").read_text() == "keep me"
