"""Test-split metrics and plots, from probabilities computed with the serving preprocessing."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from plantops_ml_training.dataset import Example


@dataclass(frozen=True)
class Predictions:
    """Class probabilities for a list of examples (rows follow `examples`)."""

    examples: list[Example]
    labels: list[str]
    probs: np.ndarray  # [N, n_labels]

    @property
    def targets(self) -> np.ndarray:
        index = {label: i for i, label in enumerate(self.labels)}
        # A test label the model does not know (an older champion) is always wrong: -1.
        return np.array([index.get(e.label, -1) for e in self.examples])

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    def write_csv(self, path: Path) -> Path:
        """`key,sha256,label,prob_<label>...`: the API's tests replay it to check skew."""
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["key", "sha256", "label", *[f"prob_{x}" for x in self.labels]])
            for example, row in zip(self.examples, self.probs, strict=True):
                probs = [f"{p:.6f}" for p in row]
                writer.writerow([example.key, example.sha256, example.label, *probs])
        return path


def accuracy(predictions: Predictions) -> float:
    return float((predictions.predicted == predictions.targets).mean())


def confusion_matrix(predictions: Predictions) -> np.ndarray:
    """`[true, predicted]` counts; rows of unknown true labels are left out."""
    n = len(predictions.labels)
    matrix = np.zeros((n, n), dtype=int)
    for target, predicted in zip(predictions.targets, predictions.predicted, strict=True):
        if target >= 0:
            matrix[target, predicted] += 1
    return matrix


def expected_calibration_error(predictions: Predictions, bins: int = 10) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by size."""
    confidence = predictions.probs.max(axis=1)
    correct = predictions.predicted == predictions.targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            gap = abs(confidence[in_bin].mean() - correct[in_bin].mean())
            ece += in_bin.mean() * gap
    return float(ece)


def classification_metrics(predictions: Predictions) -> dict[str, float]:
    """Accuracy, macro F1, per-class precision/recall/F1 and ECE, as flat MLflow metrics."""
    matrix = confusion_matrix(predictions)
    metrics = {
        "test_accuracy": accuracy(predictions),
        "test_ece": expected_calibration_error(predictions),
        "test_count": float(len(predictions.examples)),
    }
    f1s = []
    for i, label in enumerate(predictions.labels):
        true_positive = matrix[i, i]
        precision = true_positive / max(matrix[:, i].sum(), 1)
        recall = true_positive / max(matrix[i, :].sum(), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        metrics[f"test_precision_{label}"] = float(precision)
        metrics[f"test_recall_{label}"] = float(recall)
        metrics[f"test_f1_{label}"] = float(f1)
    metrics["test_macro_f1"] = float(np.mean(f1s))
    return metrics


def worst_mistakes(predictions: Predictions, limit: int = 16) -> list[int]:
    """Indices of wrong predictions, most confident first."""
    wrong = np.flatnonzero(predictions.predicted != predictions.targets)
    confidence = predictions.probs[wrong].max(axis=1)
    return [int(i) for i in wrong[np.argsort(-confidence)][:limit]]
