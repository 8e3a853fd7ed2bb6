"""`plantops-data`: create and seed the table, add sources, ingest without Airflow, report."""

from __future__ import annotations

import json
import logging
from typing import Any

import typer
from pydantic import ValidationError

from plantops_orchestration import db, ingest
from plantops_orchestration.config import Settings, get_settings

# Tracebacks never print local variables: they hold the settings, secrets included.
app = typer.Typer(
    help="PlantOps data: the plants_data table and the ingestion into S3.",
    pretty_exceptions_show_locals=False,
)


def settings_or_exit() -> Settings:
    """The settings, or exit 2 naming what is missing or wrong, never echoing the values."""
    try:
        return get_settings()
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False):
            name = "PLANTOPS_" + "_".join(str(part) for part in problem["loc"]).upper()
            typer.echo(f"error: {name}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each step.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command("init-db")
def init_db(seed: bool = typer.Option(True, help="Insert the 400 canonical rows.")) -> None:
    """Create plants_data, add the pipeline's columns, insert the canonical rows (idempotent)."""
    settings = settings_or_exit()
    with db.connection(settings) as conn:
        added = db.init_db(conn, seed=seed)
        counts = db.status_counts(conn)
    changes = ", ".join(added) if added else "schema already up to date"
    typer.echo(f"plants_data in {settings.mysql_database}: {changes}; rows by status: {counts}")


@app.command()
def add(
    url: str = typer.Option(..., help="http(s):// URL or s3://bucket/key of the image."),
    label: str = typer.Option(..., help="Class name, e.g. dandelion (a-z, 0-9, _ and -)."),
) -> None:
    """Add one image source; the next ingestion stores it and makes a new dataset version."""
    settings = settings_or_exit()
    with db.connection(settings) as conn:
        try:
            row_id, created = db.add_row(conn, url, label)
        except ValueError as error:  # RowConflict included
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from error
    typer.echo(f"row {row_id} {'added' if created else 'already present'}: {label} {url}")


@app.command("ingest")
def ingest_command() -> None:
    """Run the whole ingestion once without Airflow and print its report as JSON."""
    typer.echo(json.dumps(ingest.run_all(settings_or_exit()), indent=2))


@app.command()
def status() -> None:
    """Rows by status and by review state, the failed rows, and the latest dataset version."""
    settings = settings_or_exit()
    with db.connection(settings) as conn:
        report: dict[str, Any] = {
            "rows": db.status_counts(conn),
            "review": db.review_counts(conn),
            "failed": db.failed_rows(conn),
        }
    report["latest_dataset_version"] = ingest.latest_version(settings)
    typer.echo(json.dumps(report, indent=2, default=str))


@app.command("drift-report")
def drift_report() -> None:
    """Print the latest plants_monitor report's summary as one JSON line (`make monitor`)."""
    from plantops_orchestration import monitoring
    from plantops_orchestration.storage import get_json, make_client

    settings = settings_or_exit()
    client = make_client(settings)
    pointer = get_json(client, settings.s3_bucket, monitoring.LATEST_REPORT_KEY)
    report = get_json(client, settings.s3_bucket, pointer["report_key"]) if pointer else None
    if report is None:
        typer.echo("error: no drift report yet: run plants_monitor (make monitor)", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(monitoring.summary(report), sort_keys=True))
