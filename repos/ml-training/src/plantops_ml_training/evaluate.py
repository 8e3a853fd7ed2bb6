"""Metrics of a test split or the field check, from probabilities computed with the
serving preprocessing (and, for the field check, the exported ONNX model)."""

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


@dataclass(frozen=True)
class ReliabilityBin:
    """Photos whose top probability fell in (low, high]: their mean confidence and accuracy."""

    low: float
    high: float
    count: int
    confidence: float
    accuracy: float


def reliability_bins(predictions: Predictions, bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width confidence bins (empty ones left out): the reliability diagram's data."""
    confidence = predictions.probs.max(axis=1)
    correct = predictions.predicted == predictions.targets
    result = []
    for low, high in pairwise(np.linspace(0.0, 1.0, bins + 1)):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            result.append(
                ReliabilityBin(
                    float(low),
                    float(high),
                    int(in_bin.sum()),
                    float(confidence[in_bin].mean()),
                    float(correct[in_bin].mean()),
                )
            )
    return result


def expected_calibration_error(predictions: Predictions, bins: int = 10) -> float:
    """Mean |confidence - accuracy| over equal-width confidence bins, weighted by size."""
    total = len(predictions.examples)
    return float(
        sum(
            b.count / total * abs(b.confidence - b.accuracy)
            for b in reliability_bins(predictions, bins)
        )
    )


def classification_metrics(predictions: Predictions, prefix: str = "test") -> dict[str, float]:
    """Accuracy, balanced accuracy, macro F1, per-class precision/recall/F1 and ECE, as
    flat MLflow metrics named `<prefix>_<metric>`.

    Balanced accuracy is the mean recall over the labels that have photos here: on an
    unbalanced set (the field check: 236 dandelions, 27 grass) plain accuracy hides the
    small class.
    """
    matrix = confusion_matrix(predictions)
    metrics = {
        f"{prefix}_accuracy": accuracy(predictions),
        f"{prefix}_ece": expected_calibration_error(predictions),
        f"{prefix}_count": float(len(predictions.examples)),
    }
    f1s, recalls = [], []
    for i, label in enumerate(predictions.labels):
        true_positive = matrix[i, i]
        precision = true_positive / max(matrix[:, i].sum(), 1)
        recall = true_positive / max(matrix[i, :].sum(), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        f1s.append(f1)
        if matrix[i, :].sum():
            recalls.append(recall)
        metrics[f"{prefix}_precision_{label}"] = float(precision)
        metrics[f"{prefix}_recall_{label}"] = float(recall)
        metrics[f"{prefix}_f1_{label}"] = float(f1)
    metrics[f"{prefix}_macro_f1"] = float(np.mean(f1s))
    metrics[f"{prefix}_balanced_accuracy"] = float(np.mean(recalls)) if recalls else 0.0
    return metrics


def worst_mistakes(predictions: Predictions, limit: int = 16) -> list[int]:
    """Indices of wrong predictions, most confident first."""
    wrong = np.flatnonzero(predictions.predicted != predictions.targets)
    confidence = predictions.probs[wrong].max(axis=1)
    return [int(i) for i in wrong[np.argsort(-confidence)][:limit]]
