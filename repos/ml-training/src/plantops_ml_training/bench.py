"""`make bench-train`: the default recipe on several stratified splits of a local folder.

Works from `<images>/<label>/*.jpg` directly (no S3, no MLflow), so the figures
measure the recipe, not the network. Each split: 20 % test, 5 % validation (only
watched: nothing is selected on it), the rest training, stratified per label, seeded
by the split number. A run's time covers
training, test evaluation, ONNX export and the ONNX check (images already on disk).
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from plantops_ml_training.config import TrainConfig
from plantops_ml_training.dataset import folder_dataset
from plantops_ml_training.evaluate import Predictions, classification_metrics
from plantops_ml_training.export import export_onnx, verify_onnx
from plantops_ml_training.label_review import apply_label_review
from plantops_ml_training.pipeline import training_items
from plantops_ml_training.train import train

TARGET_MEAN_ACCURACY = 0.96
TARGET_RECALL = 0.93
TARGET_RUN_SECONDS = 300
VAL_FRACTION = 0.05

log = logging.getLogger(__name__)


def run_split(images: Path, config: TrainConfig, split: int) -> dict:
    started = time.perf_counter()
    dataset, paths = folder_dataset(images, seed=split, val_fraction=VAL_FRACTION)
    dataset, _ = apply_label_review(dataset, config.label_review)
    trained = train(training_items(dataset, paths), dataset.labels, config)
    test = dataset.split("test")
    test_paths = [paths[e.sha256] for e in test]
    metrics = classification_metrics(
        Predictions(test, dataset.labels, trained.predict_probs(test_paths))
    )
    with tempfile.TemporaryDirectory() as tmp:
        serving = trained.serving_model()
        onnx_path = export_onnx(serving, trained.spec, Path(tmp) / "model.onnx")
        verify_onnx(serving, onnx_path, trained.spec, test_paths)
    return {
        "split": split,
        "test_accuracy": metrics["test_accuracy"],
        "recall": {label: metrics[f"test_recall_{label}"] for label in dataset.labels},
        "train_seconds": trained.seconds,
        "run_seconds": time.perf_counter() - started,
    }


def summarise(runs: list[dict], config: TrainConfig) -> dict:
    accuracies = [r["test_accuracy"] for r in runs]
    labels = list(runs[0]["recall"])
    recall_mean = {x: statistics.fmean(r["recall"][x] for r in runs) for x in labels}
    recall_min = {x: min(r["recall"][x] for r in runs) for x in labels}
    mean = statistics.fmean(accuracies)
    run_max = max(r["run_seconds"] for r in runs)
    return {
        "splits": len(runs),
        "test_accuracy_mean": round(mean, 4),
        "test_accuracy_std": round(statistics.pstdev(accuracies), 4),
        "test_accuracies": [round(a, 4) for a in accuracies],
        "recall_mean": {k: round(v, 4) for k, v in recall_mean.items()},
        "recall_min": {k: round(v, 4) for k, v in recall_min.items()},
        "train_seconds_mean": round(statistics.fmean(r["train_seconds"] for r in runs), 1),
        "run_seconds_max": round(run_max, 1),
        "targets_met": mean >= TARGET_MEAN_ACCURACY
        and all(v >= TARGET_RECALL for v in recall_mean.values())
        and run_max < TARGET_RUN_SECONDS,
        "config": config.flat_params(),
    }


def run_bench(images: Path, config: TrainConfig, splits: int = 5) -> dict:
    runs = []
    for split in range(splits):
        runs.append(run_split(images, config, split))
        log.info("bench split %d: %s", split, runs[-1])
    return summarise(runs, config)


def to_json_line(result: dict) -> str:
    return json.dumps(result, sort_keys=False)
