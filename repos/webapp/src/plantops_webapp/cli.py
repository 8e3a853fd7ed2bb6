"""`plantops-webapp serve`: run the web app with uvicorn (the Makefile and the image use it)."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from plantops_webapp import server
from plantops_webapp.config import get_settings

app = typer.Typer(help="PlantOps web app.", no_args_is_help=True)


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
