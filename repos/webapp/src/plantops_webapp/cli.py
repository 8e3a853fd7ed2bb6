"""`plantops-webapp serve` runs the web app with uvicorn (the Makefile and the image use it);
`plantops-webapp add-reviewer` writes a reviewer account to the accounts file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from plantops_webapp import server
from plantops_webapp.config import get_settings
from plantops_webapp.reviewers import AccountsError, hash_password, write_account

MIN_PASSWORD_LENGTH = 12

# Tracebacks never print local variables: they hold the settings, secrets included.
app = typer.Typer(
    help="PlantOps web app.", no_args_is_help=True, pretty_exceptions_show_locals=False
)


@app.callback()
def main() -> None:
    """PlantOps web app."""


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, envvar="PLANTOPS_WEBAPP_PORT", help="Port to listen on."),
) -> None:
    """Serve the pages; settings come from PLANTOPS_* variables (see the README)."""
    try:
        settings = get_settings()
    except ValidationError as exc:
        # Say which variable is wrong before uvicorn buries it in a traceback.
        problems = "; ".join(
            f"PLANTOPS_{str(error['loc'][0]).upper()}: {error['msg']}" for error in exc.errors()
        )
        typer.echo(f"Invalid settings: {problems}", err=True)
        raise typer.Exit(2) from None
    server.run(
        "plantops_webapp.main:create_app",
        host=host,
        port=port,
        read_timeout_s=settings.webapp_request_read_timeout_s,
        keep_alive_timeout_s=settings.webapp_keep_alive_timeout_s,
        max_connections=settings.webapp_max_connections,
        proxy_headers=True,
    )


@app.command("add-reviewer")
def add_reviewer(
    name: Annotated[str, typer.Argument(help="The reviewer's sign-in name.")],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            envvar="PLANTOPS_WEBAPP_REVIEWERS_FILE",
            help="The accounts file the web app reads (PLANTOPS_WEBAPP_REVIEWERS_FILE).",
        ),
    ],
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (scripts)."
    ),
) -> None:
    """Add a reviewer (or change their password): writes `name:argon2 hash` to the file."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        typer.echo(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.", err=True)
        raise typer.Exit(2)
    try:
        write_account(file, name, hash_password(password))
    except AccountsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"reviewer {name} written to {file}; restart the web app to load it.")
