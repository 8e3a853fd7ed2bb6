"""One small model, trained once per session from the shared photos (no servers).

60 photos per label to train on, 10 to validate, and a fixed set of 30 per label that
the model never sees (indices 170-199). The default recipe at 128 px: seconds on two
cores, and well above chance, so behaviour can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from plantops_ml_training.config import load_config
from plantops_ml_training.train import FeatureCache, Item, TrainedModel, train

LABELS = ["dandelion", "grass"]


@dataclass(frozen=True)
class HeldOut:
    paths: list[Path]
    labels: list[str]


@pytest.fixture(scope="session")
def held_out(images_dir) -> HeldOut:
    pairs = [(images_dir / x / f"{i:08d}.jpg", x) for x in LABELS for i in range(170, 200)]
    return HeldOut([p for p, _ in pairs], [x for _, x in pairs])


@pytest.fixture(scope="session")
def training_items(images_dir) -> list[Item]:
    return [
        Item(images_dir / label / f"{i:08d}.jpg", label, i >= 60)
        for label in LABELS
        for i in range(70)
    ]


@pytest.fixture(scope="session")
def training_views() -> FeatureCache:
    """The training views' pooled features, filled by `trained` (the novelty bank)."""
    return {}


@pytest.fixture(scope="session")
def trained(training_items, training_views) -> TrainedModel:
    # No flip TTA here: mirror invariance must be learned, not built into the graph.
    config = load_config(overrides={"image_size": 128, "tta_flip": False})
    return train(training_items, LABELS, config, feature_cache=training_views)
