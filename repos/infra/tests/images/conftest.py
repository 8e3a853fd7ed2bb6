"""Fixtures of the image smoke tests (`make image-smoke`): the engine, the built images.

The engine is Docker where a daemon answers, else podman (scripts/podman-setup.sh sets it
up). No engine is a failure, never a skip: these tests are how a broken image is seen.
Every image is built, ml-training (torch) included: cold, its build is the longest one,
about 5 minutes here; after a code change, seconds (docs/BENCHMARKS.md, "Images").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plantops_infra.images import INFRA, Image, ImageError, build_all, prepare_engine, selected

LOG_DIR = INFRA / "reports" / "images"


def wanted() -> list[Image]:
    return selected()


@pytest.fixture(scope="session")
def engine_used() -> str:
    try:
        return prepare_engine()
    except ImageError as error:
        pytest.fail(f"no container engine works here, so no image can be checked:\n{error}")


@pytest.fixture(scope="session")
def built(engine_used: str) -> dict[str, float]:
    """Every wanted image built (cached layers reused), two at a time: seconds each took."""
    try:
        took = build_all(wanted(), LOG_DIR, engine_used, jobs=2)
    except ImageError as error:
        pytest.fail(str(error))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "builds.json").write_text(json.dumps({k: round(v, 1) for k, v in took.items()}))
    return took


@pytest.fixture(scope="session")
def log_dir() -> Path:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return LOG_DIR
