"""The pages: upload, result, feedback and model."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from plantops_webapp import csrf, visitors
from plantops_webapp.api_client import ApiRejected
from plantops_webapp.config import Settings
from plantops_webapp.deps import (
    ClientDep,
    FeedbackStoreDep,
    LimitsDep,
    MetricsDep,
    PendingDep,
    SettingsDep,
)
from plantops_webapp.feedback import FeedbackUnavailable, Submission, TooManyPending, Verdict
from plantops_webapp.images import ImageRefused, accepted_names, sniff
from plantops_webapp.labels import LabelRefused, normalise_new_label, sentence_of
from plantops_webapp.pending import PendingUpload
from plantops_webapp.ratelimit import AbuseLimits, RateLimiter
from plantops_webapp.rendering import render

router = APIRouter(tags=["pages"])


def upload_error(request: Request, message: str, status_code: int) -> Response:
    return render(request, "upload.html", {"error": message}, status_code)


def form_expired(request: Request, template: str, context: dict | None = None) -> Response:
    message = "This form has expired. Reload the page and try again."
    return render(request, template, {**(context or {}), "error": message}, 403)


def csrf_ok(request: Request, settings: Settings, purpose: str, form_token: object) -> bool:
    secret = settings.webapp_secret_key.get_secret_value()
    return csrf.is_valid(secret, visitors.visitor_id(request), purpose, form_token)


def visitor_key(request: Request, settings: Settings) -> str:
    return visitors.visitor_key(request, settings.webapp_secret_key.get_secret_value())


def slow_down(request: Request, retry_after_s: int, message: str | None = None) -> Response:
    """429: the visitor went past a limit; the page says how long to wait."""
    text = message or (
        "You are sending photos faster than this site accepts. "
        f"Please wait {retry_after_s} seconds and try again."
    )
    response = render(request, "slow_down.html", {"message": text}, 429)
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def over_limit(
    request: Request, settings: Settings, limits: AbuseLimits, limiter: RateLimiter
) -> Response | None:
    """The 429 page when this visitor or its address is over `limiter`'s limit, else None."""
    secret = settings.webapp_secret_key.get_secret_value()
    wait = limits.check(
        limiter, visitors.visitor_key(request, secret), visitors.address_key(request, secret)
    )
    return None if wait is None else slow_down(request, wait)


@router.get("/")
async def upload_page(request: Request) -> Response:
    """The upload form."""
    return render(request, "upload.html")


@router.post("/predict")
async def predict(
    request: Request,
    settings: SettingsDep,
    client: ClientDep,
    pending: PendingDep,
    metrics: MetricsDep,
    limits: LimitsDep,
) -> Response:
    """Send the uploaded photo to the inference API, then show the result page."""
    refused = over_limit(request, settings, limits, limits.uploads)
    if refused is not None:
        return refused
    form = await request.form()
    if not csrf_ok(request, settings, csrf.UPLOAD, form.get(csrf.FIELD_NAME)):
        return form_expired(request, "upload.html")
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return upload_error(request, "Choose a photo to upload.", 400)
    limit = settings.webapp_max_upload_bytes
    image = await upload.read(limit + 1)
    if len(image) > limit:
        return await too_large_page(request)
    if not image:
        return upload_error(request, f"The file {upload.filename} is empty.", 400)
    # What the page cannot show or the API would refuse is refused here, before the API
    # spends a prediction on it.
    image_format = sniff(image)
    if image_format is None:
        message = f"{upload.filename} cannot be shown here: upload a {accepted_names()} image."
        return upload_error(request, message, 415)
    try:
        settings.image_budget.check(image)
    except ImageRefused as exc:
        return upload_error(request, exc.message, exc.status_code)
    try:
        prediction = await client.predict(
            image, upload.filename, upload.content_type or "application/octet-stream"
        )
    except ApiRejected as exc:
        metrics.api_errors.labels("rejected").inc()
        return upload_error(request, exc.message, exc.status_code)
    metrics.predictions.labels(prediction.label).inc()
    upload_id = pending.add(
        visitor_key(request, settings), image, image_format, upload.filename, prediction
    )
    # Post/Redirect/Get: reloading the result page does not upload again.
    return RedirectResponse(f"/results/{upload_id}", status_code=303)


async def too_large_page(request: Request) -> Response:
    """The upload page saying the file is too big (413); also used by the body size limit."""
    settings = request.app.state.settings
    mb = settings.webapp_max_upload_bytes / (1024 * 1024)
    return upload_error(request, f"The file is larger than {mb:g} MB: choose a smaller photo.", 413)


def expired_result(request: Request) -> Response:
    return render(request, "expired.html", status_code=404)


def result_context(upload_id: str, upload: PendingUpload, low_confidence: float) -> dict:
    prediction = upload.prediction
    return {
        "upload_id": upload_id,
        "upload": upload,
        "prediction": prediction,
        "ranked": prediction.ranked(),
        # An unfamiliar photo gets its own notice; "not sure" would say less.
        "low_confidence": prediction.confidence < low_confidence and not prediction.unfamiliar,
        # "a dandelion or grass": from the model's own labels, however many it has.
        "labels_sentence": sentence_of(prediction.labels()),
        "other_labels": [label for label, _ in prediction.ranked() if label != prediction.label],
        "new_label": "",
        "new_label_error": None,
        "csrf_purpose": csrf.feedback_purpose(upload_id),
    }


@router.get("/results/{upload_id}")
async def result_page(
    request: Request, upload_id: str, pending: PendingDep, settings: SettingsDep
) -> Response:
    """The prediction for an uploaded photo, with the feedback forms."""
    upload = pending.get(visitor_key(request, settings), upload_id)
    if upload is None:
        return expired_result(request)
    context = result_context(upload_id, upload, settings.webapp_low_confidence)
    return render(request, "result.html", context)


@router.get("/results/{upload_id}/image")
async def result_image(
    request: Request, upload_id: str, pending: PendingDep, settings: SettingsDep
) -> Response:
    """The uploaded photo, served with the type its bytes show (never the client's claim)."""
    upload = pending.get(visitor_key(request, settings), upload_id)
    if upload is None:
        return Response(status_code=404)
    headers = {"Cache-Control": "private, max-age=3600"}
    return Response(upload.image, media_type=upload.image_format.media_type, headers=headers)


@router.post("/results/{upload_id}/feedback")
async def feedback(
    request: Request,
    upload_id: str,
    settings: SettingsDep,
    pending: PendingDep,
    store: FeedbackStoreDep,
    metrics: MetricsDep,
    limits: LimitsDep,
) -> Response:
    """Record "correct" or "wrong, it is …": the photo goes to review with that label."""
    refused = over_limit(request, settings, limits, limits.feedback)
    if refused is not None:
        return refused
    form = await request.form()
    upload = pending.get(visitor_key(request, settings), upload_id)
    if upload is None:
        return expired_result(request)
    context = result_context(upload_id, upload, settings.webapp_low_confidence)
    if not csrf_ok(request, settings, csrf.feedback_purpose(upload_id), form.get(csrf.FIELD_NAME)):
        return form_expired(request, "result.html", context)
    try:
        label = chosen_label(form.get("verdict"), form.get("label"), form.get("new_label"), upload)
    except LabelRefused as exc:
        # The page again, the typed name kept and the reason beside the field.
        typed = str(form.get("new_label") or "")[:200]
        again = {**context, "new_label": typed, "new_label_error": str(exc)}
        return render(request, "result.html", again, 400)
    if label is None:
        message = "Choose the label the photo should have."
        return render(request, "result.html", {**context, "error": message}, 400)
    if store is None:
        return render(request, "error.html", {"message": FEEDBACK_OFF}, 503)
    submitter = visitors.submitter_id(request, settings.webapp_secret_key.get_secret_value())
    try:
        outcome = await run_in_threadpool(store.save, Submission(upload, label, submitter))
    except TooManyPending as exc:
        message = (
            f"You already have {exc.pending} photos waiting for a reviewer. Please come back "
            "once they have been reviewed."
        )
        return slow_down(request, 3600, message)
    except FeedbackUnavailable as exc:
        message = f"{exc} Your feedback was not saved; please try again later."
        return render(request, "error.html", {"message": message}, 503)
    verdict = verdict_of(label, upload)
    # A proposed name is free text: counted under one value, so the metric stays bounded.
    metric_label = NEW_LABEL_METRIC if verdict is Verdict.PROPOSED else label
    metrics.feedback.labels(metric_label, verdict.value).inc()
    thanks = {"outcome": outcome, "proposed_new": verdict is Verdict.PROPOSED}
    return render(request, "feedback.html", thanks)


FEEDBACK_OFF = "Feedback is not configured on this server (no S3 credentials)."


# The feedback metric's label value for every proposed new name ("(" is in no label name).
NEW_LABEL_METRIC = "(new)"


def chosen_label(
    verdict: object, label: object, new_label: object, upload: PendingUpload
) -> str | None:
    """The label the user gave: the model's answer, another of its labels, or a new name
    (normalised; LabelRefused when it cannot be a label). None when nothing was chosen."""
    known = upload.prediction.probabilities
    if verdict == "correct":
        return upload.prediction.label
    if verdict == "wrong" and isinstance(label, str) and label in known:
        return label
    if verdict == "new" and isinstance(new_label, str):
        # A name the model already knows ("Grass ") is that label, not a new one, even
        # one the stricter rules for new names would refuse.
        typed = new_label.strip().lower()
        return typed if typed in known else normalise_new_label(new_label)
    return None


def verdict_of(label: str, upload: PendingUpload) -> Verdict:
    if label == upload.prediction.label:
        return Verdict.CORRECT
    return Verdict.CORRECTED if label in upload.prediction.probabilities else Verdict.PROPOSED


@router.get("/model")
async def model_page(request: Request, client: ClientDep) -> Response:
    """Which model serves the predictions, with its test metrics and dataset version."""
    info = await client.model_info()
    return render(request, "model.html", {"info": info})
