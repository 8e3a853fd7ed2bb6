"""`plantops-train`: train, promote, roll back, list datasets, benchmark.

Exit codes: 0 success; 2 bad input, an unreachable service or an ONNX export that does
not match the trained model (a one-line reason on stderr, no traceback, nothing
registered); 1 with `--require-promotion` when the gate kept the
current champion (the new version is still registered as `challenger`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from plantops_ml_training.config import ConfigError, get_settings, load_config

# Tracebacks never print local variables: they hold the settings, secrets included.
app = typer.Typer(
    help="PlantOps training: dataset version → registered ONNX model.",
    pretty_exceptions_show_locals=False,
)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="Recipe YAML (default: the packaged default.yaml).")
]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command("train")
def train_command(
    dataset_version: Annotated[
        str, typer.Option(help="agg/<version> to train on; `latest` reads agg/latest.json.")
    ] = "latest",
    config: ConfigOption = None,
    backbone: Annotated[
        str | None, typer.Option(help="efficientnet-lite0 or resnet18/34/50")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Crop size in pixels (even).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Unfrozen epochs.")] = None,
    frozen_epochs: Annotated[int | None, typer.Option(help="Epochs with a frozen body.")] = None,
    lr: Annotated[float | None, typer.Option(help="Base learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    augment: Annotated[bool | None, typer.Option("--augment/--no-augment")] = None,
    tta_flip: Annotated[bool | None, typer.Option("--tta-flip/--no-tta-flip")] = None,
    floor: Annotated[
        float | None, typer.Option(help="Lowest test accuracy the gate makes champion.")
    ] = None,
    summary: Annotated[
        Path | None, typer.Option(help="Append a Markdown report here (CI job summary).")
    ] = None,
    require_promotion: Annotated[
        bool, typer.Option(help="Exit 1 when the new model does not become champion.")
    ] = False,
) -> None:
    """Train on a dataset version, evaluate, export ONNX, register, apply the promotion gate.

    Prints one JSON line: run id, test accuracy, model version, gate decision.
    """
    from plantops_ml_training.dataset import DatasetError
    from plantops_ml_training.export import ExportError
    from plantops_ml_training.pipeline import run_training
    from plantops_ml_training.registry import RegistryError

    _setup_logging()
    overrides = {
        "backbone": backbone,
        "image_size": image_size,
        "epochs": epochs,
        "frozen_epochs": frozen_epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "aug_enabled": augment,
        "tta_flip": tta_flip,
        "accuracy_floor": floor,
    }
    try:
        recipe = load_config(config, overrides)
        result = run_training(get_settings(), recipe, dataset_version)
    # ExportError too: an ONNX file that does not match the trained model is a failed run
    # (nothing registered), never exit 1, which means "the gate kept the champion".
    except (ConfigError, DatasetError, RegistryError, ExportError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result.summary()))
    if summary:
        with summary.open("a") as report:
            report.write(result.markdown())
    if require_promotion and not result.promoted:
        raise typer.Exit(code=1)


@app.command("promote")
def promote_command(version: Annotated[str, typer.Option(help="Model version to serve.")]) -> None:
    """Make a model version `champion` by hand (bypasses the gate)."""
    from plantops_ml_training import registry

    client = _registry_client()
    try:
        registry.promote(client, version)
    except registry.RegistryError as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"champion": version}))


@app.command("rollback")
def rollback_command() -> None:
    """Move `champion` back to the version that held it before."""
    from plantops_ml_training import registry

    client = _registry_client()
    try:
        previous = registry.rollback(client)
    except registry.RegistryError as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"champion": previous}))


@app.command("datasets")
def datasets_command() -> None:
    """List the dataset versions under agg/ in S3."""
    from plantops_ml_training.dataset import DatasetError, list_versions
    from plantops_ml_training.storage import check_bucket, s3_client

    settings = get_settings()
    try:
        client = s3_client(settings)
        check_bucket(client, settings)
    except DatasetError as exc:
        _fail(str(exc))
    for version in list_versions(client, settings.s3_bucket):
        typer.echo(version)


@app.command("bench")
def bench_command(
    images: Annotated[Path, typer.Option(help="Folder of <label>/*.jpg images.")],
    config: ConfigOption = None,
    folds: Annotated[int, typer.Option(min=2, help="Folds of the cross-validation.")] = 5,
    repeats: Annotated[
        int, typer.Option(min=1, help="Cross-validations, repeat r split with seed r.")
    ] = 1,
) -> None:
    """Cross-validate the recipe (original test labels) and score each fold's model on
    the field check (PLANTOPS_FIELD_CHECK_DIR), its novelty threshold also on the other
    plants (PLANTOPS_FIELD_CHECK_OTHER_DIR); print one JSON line of figures."""
    from plantops_ml_training.bench import run_bench, to_json_line
    from plantops_ml_training.dataset import DatasetError
    from plantops_ml_training.field_check import load_field_check

    _setup_logging()
    if not images.is_dir():
        _fail(f"{images} is not a folder of <label>/*.jpg images.")
    try:
        recipe = load_config(config)
        settings = get_settings()
        folder, other = settings.field_check_dir, settings.field_check_other_dir
        field = load_field_check(folder) if folder is not None else None
        others = sorted(other.glob("*/*.jpg")) if other is not None and field else None
        typer.echo(to_json_line(run_bench(images, recipe, folds, field, others, repeats)))
    except (ConfigError, DatasetError) as exc:
        _fail(str(exc))


@app.command("bench-novelty")
def bench_novelty_command(
    images: Annotated[Path, typer.Option(help="Folder of <label>/*.jpg training photos.")],
    field: Annotated[Path, typer.Option(help="Field-check dandelion and grass photos.")],
    other: Annotated[Path, typer.Option(help="Field-check other plants (<kind>/*.jpg).")],
    cache_dir: Annotated[
        Path, typer.Option(help="Where the extracted embeddings are kept.")
    ] = Path(".cache/novelty-bench"),
    folds: Annotated[int, typer.Option(min=2)] = 5,
    target: Annotated[float, typer.Option(help="False-alarm rate the threshold aims at.")] = 0.02,
    views: Annotated[
        int | None, typer.Option(help="Training views per photo (default: the recipe's).")
    ] = None,
    query_crops: Annotated[
        int,
        typer.Option(
            min=1,
            max=5,
            help="Crops embedded per evaluation photo: 5 also measures the multi-crop method.",
        ),
    ] = 1,
    export_model: Annotated[
        Path | None,
        typer.Option(help="Instead: train fold 0 and write its artifacts (model/...) here."),
    ] = None,
) -> None:
    """Every novelty method on the same folds: AUROC, share flagged, false alarms (one
    JSON line; docs/BENCHMARKS.md "Novelty")."""
    from plantops_ml_training.field_check import load_field_check
    from plantops_ml_training.novelty_bench import export_fold_model, run_novelty_bench

    _setup_logging()
    for folder in (images, field, other):
        if not folder.is_dir():
            _fail(f"{folder} is not a folder of <label>/*.jpg photos.")
    recipe = load_config(None, {"feature_views": views} if views else None)
    if export_model is not None:
        others = sorted(other.glob("*/*.jpg"))
        metrics = export_fold_model(images, recipe, export_model, load_field_check(field), others)
        typer.echo(json.dumps({k: round(v, 4) for k, v in metrics.items()}))
        return
    result = run_novelty_bench(images, field, other, recipe, cache_dir, folds, target, query_crops)
    typer.echo(json.dumps(result))


def _registry_client():
    from mlflow.tracking import MlflowClient

    from plantops_ml_training.registry import RegistryError, check_tracking_server

    uri = get_settings().mlflow_tracking_uri
    try:
        check_tracking_server(uri)
    except RegistryError as exc:
        _fail(str(exc))
    return MlflowClient(uri)
