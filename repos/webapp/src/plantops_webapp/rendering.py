"""Render pages: Jinja2 with autoescaping, and the CSRF token every form needs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from plantops_webapp import csrf
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


def csrf_token(request: Request, settings: Settings) -> str:
    """The request's own token when it carries a valid one, else a fresh one."""
    existing = request.cookies.get(csrf.COOKIE_NAME)
    secret = settings.webapp_secret_key.get_secret_value()
    # is_signed is False for None; the explicit check lets mypy narrow `existing` to str.
    if existing is not None and csrf.is_signed(secret, existing):
        return existing
    return csrf.new_token(secret)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    token = csrf_token(request, settings)
    page_context = {
        "csrf_field": csrf.FIELD_NAME,
        "csrf_token": token,
        "max_upload_bytes": settings.webapp_max_upload_bytes,
        "max_upload_mb": settings.webapp_max_upload_bytes / (1024 * 1024),
        "accepted_names": accepted_names(),
        "error": None,
        **(context or {}),
    }
    response = request.app.state.templates.TemplateResponse(
        request, template, page_context, status_code=status_code
    )
    if request.cookies.get(csrf.COOKIE_NAME) != token:
        response.set_cookie(
            csrf.COOKIE_NAME,
            token,
            httponly=True,
            samesite="strict",
            secure=settings.webapp_cookie_secure,
        )
    return response
