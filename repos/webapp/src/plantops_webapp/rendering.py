"""Render pages: Jinja2 with autoescaping, and the CSRF token the page's forms need."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from plantops_webapp import csrf, visitors
from plantops_webapp.config import Settings
from plantops_webapp.images import accepted_names

PACKAGE_DIR = Path(__file__).parent


def make_templates() -> Jinja2Templates:
    # Autoescaping everywhere: file names and API messages come from users.
    env = Environment(
        loader=FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    env.filters["utc_time"] = utc_time
    return Jinja2Templates(env=env)


def utc_time(moment: datetime) -> str:
    """`2026-11-27 21:29 UTC`; a time without a zone is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def csrf_token(request: Request, settings: Settings, purpose: str) -> str:
    """The token of this visitor's session for the form of `purpose` (see csrf.py)."""
    secret = settings.webapp_secret_key.get_secret_value()
    return csrf.token(secret, visitors.visitor_id(request), purpose)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """The page; its forms get the token of `context["csrf_purpose"]` (default: upload)."""
    settings: Settings = request.app.state.settings
    purpose = (context or {}).get("csrf_purpose", csrf.UPLOAD)
    page_context = {
        "csrf_field": csrf.FIELD_NAME,
        "csrf_token": csrf_token(request, settings, purpose),
        "max_upload_bytes": settings.webapp_max_upload_bytes,
        "max_upload_mb": settings.webapp_max_upload_bytes / (1024 * 1024),
        "accepted_names": accepted_names(),
        "error": None,
        **(context or {}),
    }
    return request.app.state.templates.TemplateResponse(
        request, template, page_context, status_code=status_code
    )
