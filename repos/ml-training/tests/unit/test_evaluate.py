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
    reliability_bins,
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


def test_balanced_accuracy_is_the_mean_recall_so_a_small_class_counts():
    # 9 dandelions right, 1 grass wrong: accuracy 0.9, balanced accuracy 0.5.
    unbalanced = predictions(["dandelion"] * 9 + ["grass"], [[0.9, 0.1]] * 10)
    metrics = classification_metrics(unbalanced, prefix="field")
    assert metrics["field_accuracy"] == pytest.approx(0.9)
    assert metrics["field_balanced_accuracy"] == pytest.approx(0.5)
    assert metrics["field_recall_grass"] == 0.0


def test_reliability_bins_hold_each_bins_confidence_and_accuracy():
    sample = predictions(["dandelion", "grass", "grass"], [[0.82, 0.18], [0.88, 0.12], [0.3, 0.7]])
    bins = reliability_bins(sample)
    assert [(round(b.low, 1), round(b.high, 1), b.count) for b in bins] == [
        (0.6, 0.7, 1),
        (0.8, 0.9, 2),  # 0.82 (right) and 0.88 (wrong)
    ]
    assert bins[1].accuracy == 0.5
    assert bins[1].confidence == pytest.approx(0.85)
    assert expected_calibration_error(sample) == pytest.approx((1 * 0.3 + 2 * 0.35) / 3)
