"""PNG plots logged with each run: confusion matrices, reliability diagrams and the
worst mistakes."""

from __future__ import annotations

import math
from itertools import product
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI; must precede pyplot
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from plantops_ml_training.evaluate import (
    Predictions,
    confusion_matrix,
    expected_calibration_error,
    reliability_bins,
    worst_mistakes,
)


def plot_confusion_matrix(predictions: Predictions, path: Path, name: str = "Test") -> Path:
    matrix = confusion_matrix(predictions)
    labels = predictions.labels
    size = 1.2 + 1.1 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    ax.imshow(matrix, cmap="Greens")
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=f"{name} confusion matrix",
    )
    for row, col in product(range(len(labels)), repeat=2):
        count = matrix[row, col]
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_worst_mistakes(predictions: Predictions, image_paths: list[Path], path: Path) -> Path:
    """A grid of the most confident wrong predictions (or a note when there are none)."""
    indices = worst_mistakes(predictions)
    columns = 4
    rows = max(1, math.ceil(len(indices) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not indices:
        axes[0, 0].text(0, 0.5, "no mistakes on the test split", fontsize=12)
    for ax, index in zip(axes.flat, indices, strict=False):
        with Image.open(image_paths[index]) as image:
            image.thumbnail((256, 256))
            ax.imshow(image.convert("RGB"))
        predicted = predictions.labels[predictions.predicted[index]]
        confidence = predictions.probs[index].max()
        truth = predictions.examples[index].label
        ax.set_title(f"true {truth}\npred {predicted} ({confidence:.2f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_reliability_diagram(predictions: Predictions, path: Path, name: str = "Test") -> Path:
    """Accuracy against mean confidence per confidence bin (the diagonal is perfect
    calibration); each bar is labelled with its number of photos."""
    bins = reliability_bins(predictions)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.bar(
        [b.low for b in bins],
        [b.accuracy for b in bins],
        width=[b.high - b.low for b in bins],
        align="edge",
        edgecolor="black",
        color="#7fbf7f",
        label="accuracy in bin",
    )
    ax.plot([b.confidence for b in bins], [b.accuracy for b in bins], "o", color="black")
    for b in bins:
        ax.text((b.low + b.high) / 2, min(b.accuracy + 0.02, 0.97), str(b.count), ha="center")
    ece = expected_calibration_error(predictions)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="confidence (top probability)",
        ylabel="accuracy",
        title=f"{name} reliability (ECE {ece:.3f}, {len(predictions.examples)} photos)",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_novelty_histogram(
    familiar: np.ndarray, novel: np.ndarray | None, threshold: float, path: Path
) -> Path:
    """Novelty scores of the field check's photos (and of other plants) and the threshold."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(
        0,
        max(float(np.max(familiar)), threshold, *([] if novel is None else [float(np.max(novel))]))
        * 1.05,
        40,
    )
    ax.hist(
        familiar,
        bins=bins.tolist(),
        alpha=0.6,
        label=f"field check, labels known ({len(familiar)})",
    )
    if novel is not None:
        ax.hist(novel, bins=bins.tolist(), alpha=0.6, label=f"other plants ({len(novel)})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="novelty score", ylabel="photos", title="Field-check novelty")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
