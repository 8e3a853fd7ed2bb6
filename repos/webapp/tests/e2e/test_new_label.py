"""Issue 17 in Chromium: an out-of-distribution answer, a visitor naming the plant, a
reviewer accepting the new label, and orchestration's real ingestion holding the label back
until it has enough photos.

Real servers throughout (`plantops-webapp serve`, the inference API, SeaweedFS, MariaDB,
orchestration's CLI), with one stand-in: `NoveltyStandIn` (tests/support.py) sets the API
answers' novelty fields, since the tiny model has no novelty reference.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_browser import shoot
from tests.e2e.test_review_loop import sign_in
from tests.support import LABELS, photo, plants_rows

pytestmark = pytest.mark.e2e


def test_an_unfamiliar_photo_is_named_by_the_visitor_and_accepted_as_a_new_label(
    browser: Browser, unfamiliar_webapp, plants_db, data_cli
):
    _, connection = plants_db
    data_cli("init-db", "--no-seed")
    visitor = browser.new_context(viewport={"width": 960, "height": 760})
    page = visitor.new_page()
    page.goto(unfamiliar_webapp.url)
    page.get_by_label("Photo").set_input_files(photo("grass", 70))
    page.get_by_role("button", name="Classify").click()

    sentence = f"a {', '.join(LABELS[:-1])} or {LABELS[-1]}"
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(f"This does not look like {sentence} photo the model knows")
    expect(page.get_by_role("status")).to_contain_text("Not recognised.")
    closest = page.locator("#predicted-label").inner_text()
    expect(page.locator(".closest")).to_contain_text(f"Closest label: {closest}, confidence")
    shoot(page, "result-unfamiliar")

    page.get_by_label("Something else? Name the plant").fill("none")
    page.get_by_role("button", name="Propose this label").click()
    expect(page.get_by_role("alert")).to_contain_text('"none" cannot be a label')
    page.get_by_label("Something else? Name the plant").fill("Sweet Pea")
    page.get_by_role("button", name="Propose this label").click()
    expect(page.locator("#feedback-outcome")).to_contain_text("sent to review as sweet-pea")
    visitor.close()

    reviewer = browser.new_context(viewport={"width": 960, "height": 720})
    page = reviewer.new_page()
    sign_in(page, unfamiliar_webapp.url)
    item = page.locator(".queue-item").first
    expect(item).to_contain_text("Visitor says sweet-pea")
    expect(item.locator(".tag-new")).to_have_text("new label")
    expect(item).to_contain_text("a label the model does not know")
    shoot(page, "review-new-label")
    item.get_by_role("button", name="Accept as new label sweet-pea").click()
    expect(page.locator("#review-notice")).to_contain_text("Accepted")
    reviewer.close()
    assert plants_rows(connection, "review_status, label") == [("accepted", "sweet-pea")]

    # Orchestration's default minimum: one photo of a label is stored but held back.
    report = json.loads(data_cli("ingest", min_label_images=10))
    assert report["stored"] == 1 and report["dataset_version"] is None
    assert report["held_back"]["sweet-pea"]["images"] == 1
