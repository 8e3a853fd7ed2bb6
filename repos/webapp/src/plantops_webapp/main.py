"""The FastAPI application: `create_app()` wires settings, clients, middleware and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from plantops_webapp import __version__
from plantops_webapp.api_client import ApiBusy, ApiUnavailable, InferenceClient
from plantops_webapp.config import Settings, get_settings
from plantops_webapp.feedback import FeedbackStore
from plantops_webapp.metrics import WebappMetrics
from plantops_webapp.middleware import (
    BodySizeLimit,
    RequestMetrics,
    SameOriginPosts,
    SecurityHeaders,
    VisitorCookie,
)
from plantops_webapp.pending import PendingUploads
from plantops_webapp.ratelimit import AbuseLimits
from plantops_webapp.rendering import PACKAGE_DIR, make_templates, render
from plantops_webapp.reviewers import Reviewers, load_accounts
from plantops_webapp.routes import health, pages, review

logger = logging.getLogger(__name__)

# Room for the multipart framing and the form's other fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.api_timeout_s, connect=settings.api_connect_timeout_s)
        async with httpx.AsyncClient(base_url=settings.api_url, timeout=timeout) as http:
            app.state.client = InferenceClient(http, settings.api_ready_timeout_s)
            yield

    app = FastAPI(title="PlantOps web app", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = make_templates()
    app.state.metrics = WebappMetrics()
    app.state.pending = PendingUploads(
        settings.webapp_pending_per_visitor,
        settings.webapp_pending_total_bytes,
        settings.webapp_pending_ttl_s,
    )
    app.state.feedback_store = FeedbackStore(settings) if settings.feedback_enabled else None
    app.state.limits = AbuseLimits(
        settings.webapp_uploads_per_minute,
        settings.webapp_feedback_per_minute,
        settings.webapp_posts_per_address_per_minute,
    )
    app.state.reviewers = make_reviewers(settings)

    app.include_router(pages.router)
    app.include_router(review.router)
    app.include_router(health.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    add_error_pages(app)

    # The last added runs first: headers on every answer, metrics around everything, the
    # visitor id before anything that renders a page.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.webapp_max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        too_large=pages.too_large_page,
    )
    app.add_middleware(
        SameOriginPosts, allowed_origins=settings.webapp_allowed_origins, refuse=cross_site_page
    )
    app.add_middleware(VisitorCookie, secure=settings.webapp_cookie_secure)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    app.add_middleware(SecurityHeaders)
    return app


def make_reviewers(settings: Settings) -> Reviewers:
    """The reviewer accounts of the settings (a bad accounts file stops the start-up)."""
    accounts = load_accounts(settings.webapp_reviewers, settings.webapp_reviewers_file)
    return Reviewers(
        accounts,
        settings.webapp_secret_key.get_secret_value(),
        settings.webapp_review_session_s,
        settings.webapp_signin_max_failures,
        settings.webapp_signin_lockout_s,
    )


async def cross_site_page(request: Request) -> Response:
    """403 for a POST that did not come from this site's own pages."""
    message = (
        "This form was not sent from this site's own page, so it was refused. "
        "Open the page here and send it again."
    )
    return render(request, "error.html", {"message": message}, 403)


def add_error_pages(app: FastAPI) -> None:
    """Every error is a page a person can act on; never a stack trace."""

    @app.exception_handler(ApiUnavailable)
    async def api_unavailable(request: Request, exc: ApiUnavailable) -> Response:
        if isinstance(exc, ApiBusy):  # overloaded: nothing is wrong, a retry will do
            request.app.state.metrics.api_errors.labels("busy").inc()
            response = render(request, "busy.html", {"retry_after_s": exc.retry_after_s}, 503)
            response.headers["Retry-After"] = str(exc.retry_after_s)
            return response
        request.app.state.metrics.api_errors.labels("unavailable").inc()
        logger.warning("inference API unavailable: %s", exc.reason)
        return render(request, "unavailable.html", {"reason": exc.reason}, 503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "This page does not exist." if exc.status_code == 404 else "Bad request."
        return render(request, "error.html", {"message": message}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return render(request, "error.html", {"message": "The request was not valid."}, 400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error on %s", request.url.path)
        message = "Something went wrong on our side. Please try again."
        return render(request, "error.html", {"message": message}, 500)
