"""The contracts between components and their vendored copies (`make contracts`).

Each contract is a file its producer owns under `repos/<producer>/contracts/`. A consumer
that reads it keeps a pinned copy at `repos/<consumer>/contracts/vendored/<producer>/<file>`
with the producer's package version in `.../vendored/<producer>/VERSION` (a published
component could not reach into another repository). `python scripts/contracts.py refresh`
copies every producer's file over its vendored copies; `check` lists the copies that
differ (the umbrella's tests/test_contracts.py fails on them). Standard library only.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Vendored:
    producer: str  # folder under repos/
    file: str  # under the producer's contracts/
    consumer: str

    @property
    def source(self) -> Path:
        return ROOT / "repos" / self.producer / "contracts" / self.file

    @property
    def folder(self) -> Path:
        return ROOT / "repos" / self.consumer / "contracts" / "vendored" / self.producer

    @property
    def copy(self) -> Path:
        return self.folder / self.file


# Who reads what (docs/architecture.md, "Contracts").
VENDORED = (
    Vendored("ml-training", "preprocessing.schema.json", "inference-api"),
    Vendored("orchestration", "manifest.schema.json", "ml-training"),
    Vendored("orchestration", "plants_data.sql", "webapp"),
    Vendored("inference-api", "openapi.json", "webapp"),
    Vendored("inference-api", "image-formats.json", "webapp"),
    Vendored("inference-api", "image-formats.json", "orchestration"),
    Vendored("inference-api", "prediction-log.schema.json", "orchestration"),
    Vendored("ml-training", "reference.schema.json", "orchestration"),
)


def package_version(component: str) -> str:
    """`version = "..."` of the component's pyproject.toml."""
    text = (ROOT / "repos" / component / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"repos/{component}/pyproject.toml has no version")
    return match.group(1)


def refresh() -> list[str]:
    """Copy every contract over its vendored copies and pin the producer's version."""
    written = []
    for item in VENDORED:
        item.folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.source, item.copy)
        (item.folder / "VERSION").write_text(package_version(item.producer) + "\n")
        written.append(str(item.copy.relative_to(ROOT)))
    return written


def differences() -> list[str]:
    """Every vendored copy or VERSION that does not match its producer."""
    problems = []
    for item in VENDORED:
        where = item.copy.relative_to(ROOT)
        if not item.copy.is_file():
            problems.append(f"{where} is missing")
        elif item.copy.read_bytes() != item.source.read_bytes():
            problems.append(f"{where} differs from {item.source.relative_to(ROOT)}")
        version_file = item.folder / "VERSION"
        version = version_file.read_text().strip() if version_file.is_file() else None
        if version != package_version(item.producer):
            problems.append(
                f"{version_file.relative_to(ROOT)} says {version}, "
                f"{item.producer} is {package_version(item.producer)}"
            )
    return problems


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "refresh":
        for path in refresh():
            print(f"vendored {path}")
        return 0
    if command == "check":
        problems = differences()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("changed a contract? run `make contracts`", file=sys.stderr)
        return 1 if problems else 0
    print("usage: contracts.py refresh|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
