"""The feedback loop end to end: a visitor corrects a prediction in Chromium, a reviewer
signs in and accepts it, orchestration's real `plantops-data ingest` puts it into a new
dataset version; a rejected item, and an anonymous flood, never reach a manifest.

Real servers throughout: `plantops-webapp serve` (uvicorn), the inference API, SeaweedFS,
MariaDB, and orchestration's CLI in its own virtualenv.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import REVIEWER, REVIEWER_PASSWORD
from tests.e2e.test_browser import shoot
from tests.support import LABELS, csrf_token_in, photo, plants_rows

pytestmark = pytest.mark.e2e


def sha_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def newest_manifest(s3_bucket) -> dict[str, str]:
    """sha256 -> label of the dataset version agg/latest.json points at."""
    client = s3_bucket.server.client()
    latest = json.loads(client.get_object(s3_bucket.name, "agg/latest.json").read())
    version = latest["dataset_version"]
    text = client.get_object(s3_bucket.name, f"agg/{version}/manifest.csv").read().decode()
    return {row["sha256"]: row["label"] for row in csv.DictReader(io.StringIO(text))}


def send_feedback(page: Page, url: str, image, correct: bool) -> tuple[str, str]:
    """Upload in the browser and answer; (the model's label, the label sent)."""
    page.goto(url)
    page.get_by_label("Photo").set_input_files(image)
    page.get_by_role("button", name="Classify").click()
    model_label = page.locator("#predicted-label").inner_text()
    if correct:
        page.get_by_role("button", name=f"Yes, it is {model_label}").click()
        sent = model_label
    else:
        sent = next(label for label in LABELS if label != model_label)
        page.get_by_role("radio", name=sent, exact=True).check()
        page.get_by_role("button", name="Send correction").click()
    expect(page.locator("#feedback-outcome")).to_contain_text("sent to review")
    return model_label, sent


def sign_in(page: Page, url: str, password: str = REVIEWER_PASSWORD) -> None:
    page.goto(f"{url}/review")
    expect(page.get_by_role("heading", name="Reviewer sign-in")).to_be_visible()
    page.get_by_label("Name").fill(REVIEWER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def item_of(page: Page, connection, sha: str):
    [(item_id,)] = [(row[0],) for row in plants_rows(connection) if sha in row[1]]
    return page.locator(f"#item-{item_id}")


def test_a_correction_is_reviewed_accepted_and_ingested_and_a_rejection_never_is(
    browser: Browser, live_webapp, s3_bucket, plants_db, data_cli
):
    _, connection = plants_db
    data_cli("init-db", "--no-seed")  # the pipeline's columns beside the review ones
    visitor = browser.new_context(viewport={"width": 960, "height": 560})
    # A photo whose hash puts it in the train split: orchestration holds back a label
    # whose only photos are in val or test (training could not learn it).
    corrected, rejected = photo("dandelion", 62), photo("grass", 61)
    model_label, proposed = send_feedback(visitor.new_page(), live_webapp.url, corrected, False)
    send_feedback(visitor.new_page(), live_webapp.url, rejected, True)
    visitor.close()
    # Nothing is ingested before review.
    assert json.loads(data_cli("ingest"))["rows"] == 0

    reviewer = browser.new_context(viewport={"width": 960, "height": 720})
    page = reviewer.new_page()
    sign_in(page, live_webapp.url)
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.locator("#pending-count")).to_have_text("2")
    first = page.locator(".queue-item").first  # the disagreement comes first
    expect(first).to_contain_text(f"Visitor says {proposed}")
    expect(first).to_contain_text(f"model says {model_label}")
    expect(first.get_by_role("img")).to_have_js_property("complete", True)
    assert first.get_by_role("img").evaluate("img => img.naturalWidth") > 0
    expect(page.locator("#retrain-off")).to_be_visible()
    shoot(page, "review-queue")
    first.get_by_role("button", name=f"Accept as {proposed}").click()
    expect(page.locator("#review-notice")).to_contain_text("Accepted")
    item_of(page, connection, sha_of(rejected)).get_by_role("button", name="Reject").click()
    expect(page.locator("#review-notice")).to_contain_text("Rejected")
    expect(page.locator("#queue-empty")).to_be_visible()
    reviewer.close()

    report = json.loads(data_cli("ingest"))
    assert report["stored"] == 1 and report["published"] is True
    manifest = newest_manifest(s3_bucket)
    assert manifest == {sha_of(corrected): proposed}  # the training manifest: only the accepted
    columns = "review_status, reviewed_by, review_action"
    assert sorted(plants_rows(connection, columns)) == [
        ("accepted", REVIEWER, "accepted"),
        ("rejected", REVIEWER, "rejected"),
    ]


def test_wrong_passwords_lock_the_reviewer_account(browser: Browser, live_webapp):
    page = browser.new_context().new_page()
    page.goto(f"{live_webapp.url}/review/sign-in")
    shoot(page, "review-sign-in")
    for attempt in range(5):
        sign_in(page, live_webapp.url, password=f"guess number {attempt}")
    expect(page.locator("#sign-in-error")).to_contain_text("Too many failed sign-ins")
    sign_in(page, live_webapp.url)  # the right password, while locked
    expect(page.locator("#sign-in-error")).to_contain_text("Too many failed sign-ins")
    shoot(page, "review-locked")


def test_an_anonymous_flood_is_slowed_with_429_and_none_of_it_trains(
    live_webapp, s3_bucket, plants_db, data_cli
):
    _, connection = plants_db
    data_cli("init-db", "--no-seed")
    headers = {"origin": live_webapp.url}
    codes = []
    with httpx.Client(
        base_url=live_webapp.url, headers=headers, timeout=30, follow_redirects=True
    ) as client:
        for index in range(25):  # one script, one request at a time, every photo different
            token = csrf_token_in(client.get("/").text)
            image = photo("dandelion", 100 + index).read_bytes()
            files = {"file": ("x.jpg", image, "image/jpeg")}
            answer = client.post("/predict", data={"csrf_token": token}, files=files)
            if answer.status_code != 200:
                codes.append(answer.status_code)
                continue
            token = csrf_token_in(answer.text)
            data = {"csrf_token": token, "verdict": "wrong", "label": "grass"}
            codes.append(client.post(f"{answer.url.path}/feedback", data=data).status_code)
    assert codes.count(429) >= 10  # 10 feedback a minute per visitor
    rows = plants_rows(connection, "review_status")
    assert 0 < len(rows) <= 10 and set(rows) == {("pending",)}
    data_cli("ingest")
    client = s3_bucket.server.client()
    assert not any(
        o.object_name == "agg/latest.json" for o in client.list_objects(s3_bucket.name, "agg/")
    )
