"""Test-split metrics computed from probabilities."""

import csv

import numpy as np
import pytest

from plantops_ml_training.dataset import Example
from plantops_ml_training.evaluate import (
    Predictions,
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    worst_mistakes,
)

pytestmark = pytest.mark.unit

LABELS = ["dandelion", "grass"]


def predictions(truth: list[str], probs: list[list[float]]) -> Predictions:
    examples = [Example(f"k{i}", t, "test", f"{i:064x}") for i, t in enumerate(truth)]
    return Predictions(examples, LABELS, np.array(probs))


# 3 dandelions (one mistaken for grass with 0.9), 1 grass (right).
SAMPLE = predictions(
    ["dandelion", "dandelion", "dandelion", "grass"],
    [[0.8, 0.2], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]],
)


def test_accuracy_f1_precision_and_recall():
    metrics = classification_metrics(SAMPLE)
    assert metrics["test_accuracy"] == 0.75
    assert metrics["test_recall_dandelion"] == pytest.approx(2 / 3)
    assert metrics["test_precision_dandelion"] == 1.0
    assert metrics["test_precision_grass"] == 0.5
    assert metrics["test_recall_grass"] == 1.0
    f1_dandelion, f1_grass = 0.8, 2 / 3
    assert metrics["test_macro_f1"] == pytest.approx((f1_dandelion + f1_grass) / 2)


def test_confusion_matrix_rows_are_true_labels():
    assert confusion_matrix(SAMPLE).tolist() == [[2, 1], [0, 1]]


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    calibrated = predictions(["dandelion", "grass"], [[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(calibrated) == 0.0
    overconfident = predictions(["grass", "grass"], [[0.99, 0.01], [0.99, 0.01]])
    assert expected_calibration_error(overconfident) == pytest.approx(0.99)


def test_worst_mistakes_are_the_confident_wrong_ones():
    assert worst_mistakes(SAMPLE) == [2]


def test_a_test_label_the_model_does_not_know_counts_as_wrong():
    unknown = predictions(["dandelion", "clover"], [[0.9, 0.1], [0.9, 0.1]])
    assert classification_metrics(unknown)["test_accuracy"] == 0.5


def test_predictions_csv_has_the_contract_columns(tmp_path):
    path = SAMPLE.write_csv(tmp_path / "p.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["key", "sha256", "label", "prob_dandelion", "prob_grass"]
    assert float(rows[2]["prob_grass"]) == 0.9
