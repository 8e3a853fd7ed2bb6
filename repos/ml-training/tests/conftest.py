"""Shared test helpers: the plant photos every test suite reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IMAGES = Path(
    os.environ.get(
        "PLANTOPS_IMAGES_DIR",
        Path(__file__).resolve().parents[4] / "shared/datasets/greenr-airflow/data",
    )
)


def plant_images(label: str, indices: range) -> list[Path]:
    return [IMAGES / label / f"{i:08d}.jpg" for i in indices]


@pytest.fixture(scope="session")
def images_dir() -> Path:
    if not IMAGES.is_dir():
        pytest.fail(f"The plant images are missing at {IMAGES}; set PLANTOPS_IMAGES_DIR.")
    return IMAGES
