"""The figures `plantops-train bench` chooses a recipe by (validation photos only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plantops_ml_training.bench import log_loss, summarise
from plantops_ml_training.config import TrainConfig
from plantops_ml_training.dataset import Example
from plantops_ml_training.evaluate import Predictions

pytestmark = pytest.mark.unit


def _predictions(labels: list[str], probs: list[list[float]]) -> Predictions:
    examples = [Example(f"k{i}", x, "val", f"{i:064x}") for i, x in enumerate(labels)]
    return Predictions(examples, ["dandelion", "grass"], np.array(probs))


def test_log_loss_is_the_mean_surprise_of_the_true_label():
    sure_and_right = _predictions(["dandelion", "grass"], [[1.0, 0.0], [0.0, 1.0]])
    assert log_loss(sure_and_right) == pytest.approx(0.0, abs=1e-9)
    unsure = _predictions(["dandelion", "grass"], [[0.5, 0.5], [0.5, 0.5]])
    assert log_loss(unsure) == pytest.approx(math.log(2))
    # A label the model does not know counts as certainly wrong (clipped, not infinite).
    unknown = _predictions(["clover"], [[0.5, 0.5]])
    assert log_loss(unknown) == pytest.approx(-math.log(1e-12))


def _fold(val_accuracy: float, val_log_loss: float, fold: int = 0, repeat: int = 0) -> dict:
    figures = {"accuracy": 0.9, "balanced_accuracy": 0.9, "ece": 0.02}
    figures |= {"recall_dandelion": 0.9, "recall_grass": 0.9}
    run = {f"{prefix}_{k}": v for prefix in ("test", "field") for k, v in figures.items()}
    return run | {
        "fold": fold,
        "repeat": repeat,
        "val_accuracy": val_accuracy,
        "val_log_loss": val_log_loss,
        "temperature": 0.5,
        "train_seconds": 10.0,
        "run_seconds": 20.0,
    }


def test_the_summary_leads_with_the_validation_figures_a_recipe_is_chosen_by():
    runs = [_fold(1.0, 0.1), _fold(0.95, 0.3, fold=1)]
    result = summarise(runs, TrainConfig(), ["dandelion", "grass"])
    assert list(result)[:2] == ["folds", "choose_by"]
    assert result["choose_by"]["val_accuracy"] == [0.975, 0.025]
    assert result["choose_by"]["val_log_loss"] == [0.2, 0.1]


def test_repeats_pool_every_fold_of_every_cross_validation():
    runs = [_fold(acc, 0.1, f, r) for r, acc in ((0, 1.0), (1, 0.9)) for f in (0, 1)]
    result = summarise(runs, TrainConfig(), ["dandelion", "grass"])
    assert (result["folds"], result["repeats"]) == (2, 2)
    assert result["choose_by"]["val_accuracy"] == [0.95, 0.05]  # all four runs
    assert len(result["test"]["balanced_accuracy_per_fold"]) == 4
