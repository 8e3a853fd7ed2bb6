"""The reviewer pages: sign-in, the queue, a decision per item, and "retrain now"."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from plantops_webapp import csrf, review, visitors
from plantops_webapp.airflow import RetrainFailed, trigger_training
from plantops_webapp.api_client import ApiRejected, ApiUnavailable, InferenceClient
from plantops_webapp.config import Settings
from plantops_webapp.deps import (
    ClientDep,
    FeedbackStoreDep,
    LimitsDep,
    ReviewersDep,
    SettingsDep,
)
from plantops_webapp.feedback import FeedbackStore, FeedbackUnavailable
from plantops_webapp.images import sniff
from plantops_webapp.rendering import render
from plantops_webapp.reviewers import SESSION_COOKIE, Reviewers
from plantops_webapp.routes.pages import form_expired, over_limit, slow_down

router = APIRouter(prefix="/review", tags=["review"])

SIGN_IN_PATH = "/review/sign-in"


def signed_in(request: Request, reviewers: Reviewers) -> str | None:
    return reviewers.session_reviewer(request.cookies.get(SESSION_COOKIE))


def secure_cookies(request: Request, settings: Settings) -> bool:
    return settings.webapp_cookie_secure or request.url.scheme == "https"


def plain_http_outside_local(request: Request, settings: Settings) -> bool:
    """Sign-in over plain http is refused unless the site is on a loopback address."""
    if secure_cookies(request, settings):
        return False
    host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def sign_in_page(
    request: Request, status_code: int = 200, error: str | None = None, name: str = ""
) -> Response:
    context = {"csrf_purpose": csrf.SIGN_IN, "error": error, "name": name}
    return render(request, "signin.html", context, status_code)


@router.get("/sign-in")
async def sign_in_form(request: Request, reviewers: ReviewersDep) -> Response:
    """The reviewer sign-in form."""
    if signed_in(request, reviewers):
        return RedirectResponse("/review", status_code=303)
    return sign_in_page(request)


@router.post("/sign-in")
async def sign_in(
    request: Request, settings: SettingsDep, reviewers: ReviewersDep, limits: LimitsDep
) -> Response:
    """Check the name and password; lock the name after repeated failures."""
    refused = over_limit(request, settings, limits, limits.sign_in)
    if refused is not None:
        return refused
    form = await request.form()
    name = str(form.get("name") or "")[:64]
    secret = settings.webapp_secret_key.get_secret_value()
    token = form.get(csrf.FIELD_NAME)
    if not csrf.is_valid(secret, visitors.visitor_id(request), csrf.SIGN_IN, token):
        return form_expired(request, "signin.html", {"csrf_purpose": csrf.SIGN_IN, "name": name})
    if not reviewers.configured:
        return sign_in_page(request, 503, "No reviewer account is configured on this server.")
    if plain_http_outside_local(request, settings):
        message = "Sign-in needs HTTPS here: serve the site over https (see the README)."
        return sign_in_page(request, 403, message)
    result = await run_in_threadpool(reviewers.sign_in, name, str(form.get("password") or ""))
    if result.locked_for_s:
        minutes = max(1, round(result.locked_for_s / 60))
        message = f"Too many failed sign-ins for this name: try again in {minutes} minutes."
        return sign_in_page(request, 429, message, name)
    if result.reviewer is None:
        return sign_in_page(request, 401, "The name or the password is wrong.", name)
    response = RedirectResponse("/review", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        reviewers.session_token(result.reviewer),
        max_age=int(settings.webapp_review_session_s),
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request, settings),
        path="/review",
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, settings: SettingsDep, reviewers: ReviewersDep) -> Response:
    """End the reviewer's session in this browser."""
    reviewer = signed_in(request, reviewers)
    form = await request.form()
    if reviewer and not _review_csrf_ok(request, settings, reviewer, form.get("csrf_token")):
        return form_expired(request, "error.html", {"message": "Reload the page to sign out."})
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/review")
    return response


def _review_csrf_ok(request: Request, settings: Settings, reviewer: str, token: object) -> bool:
    secret = settings.webapp_secret_key.get_secret_value()
    purpose = csrf.review_purpose(reviewer)
    return csrf.is_valid(secret, visitors.visitor_id(request), purpose, token)


async def queue_context(store: FeedbackStore, client: InferenceClient, settings: Settings) -> dict:
    """The queue, the labels a reviewer may choose, which proposals name a label the model
    does not know, and the count since the champion."""
    trained_at, champion_note, model_labels = None, None, []
    try:
        info = await client.model_info()
        trained_at, champion_note, model_labels = info.trained_at, info.version, info.labels
    except (ApiUnavailable, ApiRejected):
        pass  # the queue still works; the count since the champion says "unknown"

    def read() -> dict:
        with store.database() as connection:
            return {
                "items": review.queue(connection),
                "pending": review.pending_count(connection),
                "accepted": review.accepted_counts(connection),
                "accepted_since": (
                    review.accepted_since(connection, trained_at) if trained_at else None
                ),
            }

    data = await run_in_threadpool(read)
    return {
        **data,
        "labels": sorted({*data["accepted"], *model_labels}),
        # A proposal is a new label when the model does not know it; with the API down,
        # when no accepted photo has it.
        "model_labels": model_labels or sorted(data["accepted"]),
        "model_answered": bool(model_labels),
        "champion": champion_note,
        "trained_at": trained_at,
        "retrain_enabled": settings.retrain_enabled,
    }


@router.get("")
async def queue_page(
    request: Request,
    settings: SettingsDep,
    reviewers: ReviewersDep,
    store: FeedbackStoreDep,
    client: ClientDep,
) -> Response:
    """Items waiting for review: disagreements first, then the least confident."""
    reviewer = signed_in(request, reviewers)
    if reviewer is None:
        return RedirectResponse(SIGN_IN_PATH, status_code=303)
    if store is None:
        return render(request, "error.html", {"message": STORE_OFF}, 503)
    try:
        context = await queue_context(store, client, settings)
    except FeedbackUnavailable as exc:
        return render(request, "error.html", {"message": str(exc)}, 503)
    notice = request.query_params.get("done")
    context |= {
        "reviewer": reviewer,
        "csrf_purpose": csrf.review_purpose(reviewer),
        "notice": NOTICES.get(notice or ""),
    }
    return render(request, "review.html", context)


STORE_OFF = "Feedback storage is not configured on this server (no S3 credentials)."
NOTICES = {
    "accept": "Accepted: the next ingestion adds it to the dataset (a new label once it has "
    "enough accepted photos).",
    "relabel": "Accepted with the new label: the next ingestion adds it to the dataset.",
    "reject": "Rejected: it will never be trained on.",
    "retrain": "Training was queued in Airflow.",
}


@router.get("/items/{item_id}/image")
async def item_image(
    request: Request, item_id: int, reviewers: ReviewersDep, store: FeedbackStoreDep
) -> Response:
    """The photo of a pending item, for signed-in reviewers only."""
    if signed_in(request, reviewers) is None or store is None:
        return Response(status_code=404)

    def read() -> bytes | None:
        with store.database() as connection:
            item = review.pending_item(connection, item_id)
        return None if item is None else store.photo(item.url_source)

    image = await run_in_threadpool(read)
    if image is None:
        return Response(status_code=404)
    image_format = sniff(image)
    media_type = image_format.media_type if image_format else "application/octet-stream"
    return Response(image, media_type=media_type, headers={"Cache-Control": "private"})


@router.post("/items/{item_id}")
async def decide(
    request: Request,
    item_id: int,
    settings: SettingsDep,
    reviewers: ReviewersDep,
    store: FeedbackStoreDep,
) -> Response:
    """Accept, accept with another label, or reject one item; who and when are recorded."""
    reviewer = signed_in(request, reviewers)
    if reviewer is None:
        return RedirectResponse(SIGN_IN_PATH, status_code=303)
    form = await request.form()
    if not _review_csrf_ok(request, settings, reviewer, form.get("csrf_token")):
        return form_expired(request, "error.html", {"message": "Reload the queue."})
    if store is None:
        return render(request, "error.html", {"message": STORE_OFF}, 503)
    try:
        action = review.Action(str(form.get("action")))
    except ValueError:
        return render(request, "error.html", {"message": "Choose accept or reject."}, 400)
    label = form.get("label") if action is review.Action.RELABEL else None

    def write() -> None:
        with store.database() as connection:
            review.decide(
                connection, item_id, action, reviewer, label if isinstance(label, str) else None
            )

    try:
        await run_in_threadpool(write)
    except review.DecisionRefused as exc:
        return render(request, "error.html", {"message": str(exc)}, 409)
    except FeedbackUnavailable as exc:
        return render(request, "error.html", {"message": str(exc)}, 503)
    return RedirectResponse(f"/review?done={action.value}", status_code=303)


@router.post("/retrain")
async def retrain(
    request: Request, settings: SettingsDep, reviewers: ReviewersDep, limits: LimitsDep
) -> Response:
    """Queue a run of the training DAG through Airflow's REST API."""
    reviewer = signed_in(request, reviewers)
    if reviewer is None:
        return RedirectResponse(SIGN_IN_PATH, status_code=303)
    form = await request.form()
    if not _review_csrf_ok(request, settings, reviewer, form.get("csrf_token")):
        return form_expired(request, "error.html", {"message": "Reload the queue."})
    wait = limits.retrain.hit(reviewer)
    if wait is not None:
        return slow_down(request, wait, f"Training was just requested: wait {wait} seconds.")
    try:
        await trigger_training(settings, reviewer)
    except RetrainFailed as exc:
        return render(request, "error.html", {"message": str(exc)}, 502)
    return RedirectResponse("/review?done=retrain", status_code=303)
