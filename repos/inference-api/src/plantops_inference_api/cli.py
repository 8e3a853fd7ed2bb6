"""`plantops-inference-api`: serve the API, or classify images from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

# Tracebacks never print local variables: they hold the settings, secrets included.
app = typer.Typer(
    help="PlantOps inference API.", no_args_is_help=True, pretty_exceptions_show_locals=False
)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: PLANTOPS_API_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: PLANTOPS_API_PORT.")] = None,
) -> None:
    """Run the API with uvicorn (settings from PLANTOPS_* variables), with its deadlines."""
    from plantops_inference_api import server
    from plantops_inference_api.config import get_settings

    settings = get_settings()
    server.run(
        "plantops_inference_api.main:create_app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        read_timeout_s=settings.api_request_read_timeout_s,
        keep_alive_timeout_s=settings.api_keep_alive_timeout_s,
        max_connections=settings.api_max_connections,
        log_level=settings.log_level.lower(),
        access_log=False,  # requests are counted and timed in /metrics
    )


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option(help="Write here (default: stdout).")] = None,
) -> None:
    """The OpenAPI document the API serves at /openapi.json (contracts/openapi.json)."""
    from plantops_inference_api.config import Settings
    from plantops_inference_api.main import create_app

    # The schema depends on no setting; defaults, so no environment leaks into it.
    text = json.dumps(create_app(Settings()).openapi(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="Folder with model.onnx + preprocessing.json.")],
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
) -> None:
    """Classify image files with a local model folder; one JSON line per image."""
    from plantops_inference_api.model import ModelSource, load_model_dir
    from plantops_inference_api.preprocessing import ImageBudget, preprocess_bytes

    model = load_model_dir(model_dir, ModelSource(name="local", version="local", alias="local"))
    # Local files from the operator: a looser budget than the API's.
    budget = ImageBudget(max_pixels=200_000_000, max_aspect_ratio=100.0)
    for path in images:
        x = preprocess_bytes(path.read_bytes(), model.spec, budget)
        probs = model.probabilities(x[None])[0]
        out = {"file": str(path), **dict(zip(model.labels, map(float, probs), strict=True))}
        typer.echo(json.dumps(out))


@app.command("check-skew")
def check_skew_command(
    api_url: Annotated[str, typer.Option(help="A running API.")] = "http://127.0.0.1:8000",
    tolerance: Annotated[float, typer.Option(help="Largest accepted difference.")] = 1e-4,
    limit: Annotated[int, typer.Option(help="Check only the first N images (0: all).")] = 0,
) -> None:
    """Check the served model's probabilities against training's test_predictions.csv.

    Images are read by key from PLANTOPS_S3_BUCKET; S3 settings from PLANTOPS_S3_*.
    """
    from plantops_inference_api.config import get_settings
    from plantops_inference_api.skew import check_skew

    settings = get_settings()
    report = check_skew(settings, api_url, settings.s3_bucket, limit)
    typer.echo(json.dumps(report.__dict__))
    if not report.ok(tolerance):
        raise typer.Exit(1)


@app.command("check-folder")
def check_folder_command(
    folder: Annotated[Path, typer.Argument(help="Photos in <label>/ sub-folders.")],
    api_url: Annotated[str, typer.Option(help="A running API.")] = "http://127.0.0.1:8000",
) -> None:
    """Score a running API on labelled photos: recall per label, balanced accuracy, ECE.

    One JSON line. Sub-folders that are not served labels are counted, not scored.
    """
    from plantops_inference_api.folder_check import check_folder

    if not folder.is_dir():
        typer.echo(f"error: {folder} is not a folder of <label>/ sub-folders", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(check_folder(api_url, folder)))


if __name__ == "__main__":  # python -m plantops_inference_api.cli (tests)
    app()
