"""`make bench-train`: a recipe under 5-fold cross-validation of a local folder, each
fold's model also scored on the field check.

Works from `<images>/<label>/*.jpg` directly (no S3, no MLflow), so the figures
measure the recipe, not the network. Each fold: its 20 % of the photos is the test
split (every photo is tested once across the folds), 10 % validation (the temperature
is fitted on it, and its accuracy and log loss are what a recipe is chosen by), the rest
training. The label
review applies to the training part only, so the test figures are on the **original
labels**. The field check (`PLANTOPS_FIELD_CHECK_DIR`) is scored with each fold's
exported ONNX model, as the API would run it, and so is the novelty threshold each fold
fits as a run does (issue 17): the field check's dandelion and grass it flags, and with
the other plants (`PLANTOPS_FIELD_CHECK_OTHER_DIR`) the share of those it flags and the
AUROC between the two. A run's time covers training, calibration, test evaluation, ONNX
export and check, and the novelty fit (images already on disk); with `frozen_body` the
body's features of a photo are computed once for all folds, so the first fold's time is
the one that stands for a run (`run_seconds_max`).

Nothing here selects anything on a test split or on the field check: they are
reported. A recipe is chosen on the folds' validation photos only (README, "Evaluation
protocol"): the highest mean validation accuracy, ties broken by the lower mean
validation log loss.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from plantops_ml_training.config import TrainConfig
from plantops_ml_training.dataset import folder_fold
from plantops_ml_training.evaluate import Predictions, classification_metrics
from plantops_ml_training.export import export_onnx, onnx_probs, verify_onnx
from plantops_ml_training.field_check import FieldCheck, check_never_trained_on
from plantops_ml_training.label_review import apply_label_review
from plantops_ml_training.novelty import EMBEDDING_NAME
from plantops_ml_training.pipeline import field_novelty_metrics, fit_model_novelty, training_items
from plantops_ml_training.train import FeatureCache, train

# Targets of issue 13, on the field check (as served) and for the time of one run.
TARGET_FIELD_BALANCED_ACCURACY = 0.96
TARGET_FIELD_GRASS_RECALL = 0.93
TARGET_FIELD_ECE = 0.05
TARGET_RUN_SECONDS = 300
VAL_FRACTION = 0.1

log = logging.getLogger(__name__)


def run_fold(
    images: Path,
    config: TrainConfig,
    fold: int,
    folds: int,
    field: FieldCheck | None,
    cache: FeatureCache | None = None,
    other_plants: list[Path] | None = None,
    repeat: int = 0,
) -> dict:
    started = time.perf_counter()
    dataset, paths = folder_fold(images, fold, folds, val_fraction=VAL_FRACTION, split_seed=repeat)
    if field is not None:
        check_never_trained_on(dataset, field)
    dataset, _ = apply_label_review(dataset, config.label_review)
    items = training_items(dataset, paths)
    cache = {} if cache is None else cache
    trained = train(items, dataset.labels, config, None, cache)
    test = dataset.split("test")
    test_paths = [paths[e.sha256] for e in test]
    metrics = classification_metrics(
        Predictions(test, dataset.labels, trained.predict_probs(test_paths))
    )
    val = dataset.split("val")  # what recipes are chosen by (reviewed labels: training part)
    val_predictions = Predictions(
        val, dataset.labels, trained.predict_probs([paths[e.sha256] for e in val])
    )
    metrics |= classification_metrics(val_predictions, prefix="val")
    metrics["val_log_loss"] = log_loss(val_predictions)
    with tempfile.TemporaryDirectory() as tmp:
        # Exported as a run exports it: logits and the embedding its novelty score reads.
        spec = replace(trained.spec, embedding_name=EMBEDDING_NAME)
        serving = trained.serving_model_with_embedding()
        onnx_path = export_onnx(serving, spec, Path(tmp) / "model.onnx")
        verify_onnx(serving, onnx_path, spec, test_paths)
        novelty, _ = fit_model_novelty(trained, items, onnx_path, spec, cache)
        run_seconds = time.perf_counter() - started
        metrics["novelty_val_false_alarm_rate"] = novelty.false_alarm_rate
        if field is not None:
            probs = onnx_probs(onnx_path, spec, field.image_paths)
            metrics |= classification_metrics(
                Predictions(field.examples, dataset.labels, probs), prefix="field"
            )
            (Path(tmp) / "plots").mkdir()
            metrics |= field_novelty_metrics(
                onnx_path, spec, field, novelty, other_plants, Path(tmp)
            )
    return {
        "repeat": repeat,
        "fold": fold,
        "temperature": trained.temperature,
        **{k: v for k, v in metrics.items() if "_precision_" not in k and "_f1_" not in k},
        "train_seconds": trained.seconds,
        "run_seconds": run_seconds,
    }


def log_loss(predictions: Predictions) -> float:
    """Mean negative log probability of the true label (calibrated probabilities)."""
    targets = predictions.targets
    p = predictions.probs[np.arange(len(targets)), np.maximum(targets, 0)]
    p = np.where(targets >= 0, p, 0.0)  # a label the model does not know: always wrong
    return float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))


def _mean_std(values: list[float]) -> list[float]:
    return [round(statistics.fmean(values), 4), round(statistics.pstdev(values), 4)]


def summarise(runs: list[dict], config: TrainConfig, labels: list[str]) -> dict:
    """Mean and std over the runs (every fold of every repeat) of the validation (what a
    recipe is chosen by), test (original labels) and field-check figures."""
    result: dict = {"folds": len({r["fold"] for r in runs})}
    result["choose_by"] = {
        "val_accuracy": _mean_std([r["val_accuracy"] for r in runs]),
        "val_log_loss": _mean_std([r["val_log_loss"] for r in runs]),
    }
    names = ["accuracy", "balanced_accuracy", "ece", *(f"recall_{x}" for x in labels)]
    for prefix in ("test", "field"):
        if f"{prefix}_accuracy" not in runs[0]:
            result[prefix] = "skipped"
            continue
        result[prefix] = {n: _mean_std([r[f"{prefix}_{n}"] for r in runs]) for n in names}
        result[prefix]["balanced_accuracy_per_fold"] = [
            round(r[f"{prefix}_balanced_accuracy"], 4) for r in runs
        ]
    result["repeats"] = len({r["repeat"] for r in runs})
    result["novelty"] = novelty_summary(runs)
    result["temperatures"] = [round(r["temperature"], 3) for r in runs]
    result["train_seconds_mean"] = round(statistics.fmean(r["train_seconds"] for r in runs), 1)
    result["run_seconds_max"] = round(max(r["run_seconds"] for r in runs), 1)
    field = result["field"]
    result["targets_met"] = (
        field != "skipped"
        and field["balanced_accuracy"][0] >= TARGET_FIELD_BALANCED_ACCURACY
        and field.get("recall_grass", [0])[0] >= TARGET_FIELD_GRASS_RECALL
        and field["ece"][0] <= TARGET_FIELD_ECE
        and result["run_seconds_max"] < TARGET_RUN_SECONDS
    )
    result["config"] = config.flat_params()
    return result


# Each fold's novelty figures (issue 17), as a run reports them: its validation photos'
# false alarms; the field check's dandelion and grass flagged; the other plants flagged
# and the AUROC of other plants against field-check dandelion and grass.
NOVELTY_FIGURES = {
    "val_false_alarm": "novelty_val_false_alarm_rate",
    "field_flagged": "field_novelty_flagged",
    "other_flagged": "field_other_plants_flagged",
    "field_auroc": "field_novelty_auroc",
}


def novelty_summary(runs: list[dict]) -> dict:
    """Mean and std over the folds of each novelty figure; "skipped" for one whose photos
    were not given (no field check, no other plants)."""
    return {
        name: _mean_std([r[key] for r in runs]) if key in runs[0] else "skipped"
        for name, key in NOVELTY_FIGURES.items()
    }


def run_bench(
    images: Path,
    config: TrainConfig,
    folds: int = 5,
    field: FieldCheck | None = None,
    other_plants: list[Path] | None = None,
    repeats: int = 1,
) -> dict:
    """`repeats` cross-validations of `folds` folds each, repeat r split with seed r
    (repeated cross-validation: with 40 validation photos a fold, one cross-validation
    tells two good recipes apart by a photo or two; repeats pool more validation
    predictions of the same photos under other splits)."""
    runs = []
    cache: FeatureCache = {}  # one recipe: each photo's frozen-body features computed once
    for repeat in range(repeats):
        for fold in range(folds):
            runs.append(run_fold(images, config, fold, folds, field, cache, other_plants, repeat))
            log.info("bench repeat %d fold %d: %s", repeat, fold, runs[-1])
    labels = sorted(p.name for p in images.iterdir() if p.is_dir())
    return summarise(runs, config, labels)


def to_json_line(result: dict) -> str:
    return json.dumps(result, sort_keys=False)
