"""`plantops-infra`: the local stack (`stack up|down|status|env`) and deployment tooling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plantops_infra.config import get_settings
from plantops_infra.processes import ServiceError
from plantops_infra.stack import LocalStack

# No pretty tracebacks: they print local variables, credentials included.
app = typer.Typer(
    help="PlantOps infrastructure tooling.", no_args_is_help=True, pretty_exceptions_enable=False
)
stack_app = typer.Typer(help="The local stack without Docker.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
images_app = typer.Typer(
    help="The container images (Docker where a daemon answers, else podman).",
    no_args_is_help=True,
)
app.add_typer(images_app, name="images")
LOG_DIR = Path("reports/images")


def _stack() -> LocalStack:
    return LocalStack(get_settings())


@stack_app.command("up")
def stack_up() -> None:
    """Start S3, MySQL, MLflow and the image mirror on loopback; wait until healthy."""
    try:
        _stack().up(log=typer.echo)
    except ServiceError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error


@stack_app.command("down")
def stack_down() -> None:
    """Stop exactly the processes `stack up` started."""
    _stack().down(log=typer.echo)


@stack_app.command("status")
def stack_status() -> None:
    """Print each service's URL and health; exit 1 if one is unhealthy."""
    statuses = _stack().status()
    for service in statuses:
        mark = "healthy" if service.healthy else "DOWN"
        typer.echo(f"{service.name:8} {mark:8} {service.url}  {service.detail}".rstrip())
    if not all(service.healthy for service in statuses):
        raise typer.Exit(1)


@stack_app.command(
    "start-app", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def stack_start_app(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name for the pid and log files, e.g. 'api'."),
    health: str = typer.Option(..., help="URL that answers 2xx once the service is up."),
    timeout: float = typer.Option(120.0, help="Seconds to wait for the health URL."),
) -> None:
    """Run a command (after `--`) in the background as part of the stack; `down` stops it."""
    try:
        _stack().start_app(name, list(ctx.args), health, timeout, log=typer.echo)
    except ServiceError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error


@stack_app.command("env")
def stack_env() -> None:
    """Print the shell exports the other components need to reach this stack."""
    for key, value in _stack().component_env().items():
        typer.echo(f"export {key}={value!r}")


@images_app.command("build")
def images_build(
    names: Annotated[list[str] | None, typer.Argument(help="Images (default: every one).")] = None,
    log_dir: Annotated[Path, typer.Option(help="One build log per image.")] = LOG_DIR,
    jobs: Annotated[int, typer.Option(help="Builds at a time.")] = 2,
) -> None:
    """Set the engine up (podman-setup.sh where no Docker daemon answers), build, time each."""
    from plantops_infra.images import ImageError, build_all, prepare_engine, selected, size_bytes

    try:
        used = prepare_engine()
        images = selected(names or ())
        took = build_all(images, log_dir, used, jobs)
        for img in images:
            size_mb = size_bytes(img.reference_name) / 1e6
            seconds = took[img.name]
            typer.echo(
                f"{img.reference_name:34} built in {seconds:6.1f} s, {size_mb:7.0f} MB ({used})"
            )
    except (ImageError, KeyError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error


@images_app.command("list")
def images_list() -> None:
    """Each image's name, build folder and the manifest that runs it."""
    from plantops_infra.images import IMAGES, REPOS

    for img in IMAGES:
        where = img.manifest.relative_to(REPOS) if img.manifest else "-"
        typer.echo(f"{img.reference_name:34} {img.context.relative_to(REPOS)!s:22} {where}")


@app.command("rollout")
def rollout(
    namespace: str = typer.Option("plantops", help="Namespace the overlay was applied to."),
    timeout: float = typer.Option(600.0, help="Seconds to wait before giving up."),
    interval: float = typer.Option(5.0, help="Seconds between two looks."),
    context: str | None = typer.Option(None, help="kubeconfig context (default: current)."),
) -> None:
    """Wait until every Deployment and StatefulSet of the namespace is ready; exit 1 if not."""
    from kubernetes.client.exceptions import ApiException

    from plantops_infra.rollout import apps_api, wait_for_rollout

    seen: dict[str, str] = {}

    def show_changes(workloads) -> None:
        # One line per workload whenever its state changes, not a screen every interval.
        for workload in workloads:
            line = workload.line()
            if seen.get(workload.name) != line:
                seen[workload.name] = line
                typer.echo(line)

    try:
        report = wait_for_rollout(apps_api(context), namespace, timeout, interval, show_changes)
    except ApiException as error:
        typer.secho(f"error: Kubernetes API: {error.status} {error.reason}", fg="red", err=True)
        raise typer.Exit(1) from error
    if not report.workloads:
        typer.secho(f"error: no Deployment or StatefulSet in namespace {namespace!r}", err=True)
        raise typer.Exit(1)
    if not report.done:
        names = ", ".join(f"{w.kind}/{w.name}" for w in report.waiting)
        typer.secho(f"not ready after {report.elapsed_s:.0f} s: {names}", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"all {len(report.workloads)} workloads of {namespace} ready in {report.elapsed_s:.0f} s"
    )
