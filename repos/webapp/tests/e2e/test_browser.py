"""A person's path through the pages in headless Chromium; screenshots go to docs/images."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.support import LABELS, photo, plants_rows

pytestmark = pytest.mark.e2e


@pytest.fixture
def page(browser: Browser):
    context = browser.new_context(viewport={"width": 960, "height": 560})
    page = context.new_page()
    problems: list[str] = []
    # A CSP violation or a script error shows up as a console error: none is allowed.
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    # An error page's own status (4xx, 503) is logged too; that is the page working.
    status_logs = "Failed to load resource: the server responded with a status of"
    assert [p for p in problems if not p.startswith(status_logs)] == []


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_upload_a_dandelion_see_the_bars_and_send_feedback(
    page: Page, live_webapp, s3_bucket, plants_db
):
    _, connection = plants_db
    image_path = photo("dandelion", 0)
    page.goto(live_webapp.url)
    expect(page.get_by_role("heading", name="What plant is this?")).to_be_visible()
    shoot(page, "upload")

    page.get_by_label("Photo").set_input_files(image_path)
    expect(page.locator("[data-chosen]")).to_contain_text(image_path.name)  # upload.js ran
    page.get_by_role("button", name="Classify").click()

    label = page.locator("#predicted-label").inner_text()
    assert label in LABELS
    expect(page.locator("meter")).to_have_count(len(LABELS))
    expect(page.get_by_role("img")).to_have_js_property("complete", True)
    assert page.get_by_role("img").evaluate("img => img.naturalWidth") > 0
    expect(page.locator(".model-ref")).to_contain_text("version local")
    shoot(page, "result")

    page.get_by_role("button", name=f"Yes, it is {label}").click()
    expect(page.locator("#feedback-outcome")).to_contain_text("sent to review")
    shoot(page, "feedback")

    key = f"feedback/{hashlib.sha256(image_path.read_bytes()).hexdigest()}.jpg"
    rows = plants_rows(connection)
    assert [row[1:] for row in rows] == [(f"s3://{s3_bucket.name}/{key}", None, label)]
    stat = s3_bucket.server.client().stat_object(s3_bucket.name, key)
    assert stat.size == image_path.stat().st_size


def test_a_text_file_shows_the_error_on_the_upload_page(page: Page, live_webapp, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Dandelions are yellow.\n")
    page.goto(live_webapp.url)
    page.get_by_label("Photo").set_input_files(notes)
    page.get_by_role("button", name="Classify").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("That did not work")
    expect(page.get_by_label("Photo")).to_be_visible()  # the form is right there to try again
    shoot(page, "error-not-an-image")


def test_a_correction_by_keyboard_only(page: Page, live_webapp, plants_db):
    _, connection = plants_db
    page.goto(live_webapp.url)
    page.get_by_label("Photo").set_input_files(photo("grass", 1))
    page.get_by_role("button", name="Classify").focus()
    page.keyboard.press("Enter")
    label = page.locator("#predicted-label").inner_text()
    other = next(lbl for lbl in LABELS if lbl != label)
    page.get_by_role("radio", name=other, exact=True).focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Send correction").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#feedback-outcome")).to_contain_text(other)
    assert [row[3] for row in plants_rows(connection)] == [other]


def test_the_form_works_without_javascript(browser: Browser, live_webapp):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_webapp.url)
    page.get_by_label("Photo").set_input_files(photo("dandelion", 2))
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("meter")).to_have_count(len(LABELS))
    context.close()


def test_drag_and_drop_fills_the_form(page: Page, live_webapp):
    page.goto(live_webapp.url)
    data = list(photo("grass", 3).read_bytes())
    page.evaluate(
        """bytes => {
            const file = new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"});
            const transfer = new DataTransfer();
            transfer.items.add(file);
            const zone = document.querySelector("[data-dropzone]");
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }""",
        data,
    )
    expect(page.locator("[data-chosen]")).to_contain_text("dropped.jpg")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("figcaption")).to_have_text("dropped.jpg")


def test_a_phone_sized_screen_reads_without_sideways_scrolling(browser: Browser, live_webapp):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(live_webapp.url)
    page.get_by_label("Photo").set_input_files(photo("dandelion", 4))
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("meter")).to_have_count(len(LABELS))
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    shoot(page, "result-phone")
    context.close()


def test_api_down_shows_the_503_page(page: Page, webapp_without_api):
    page.goto(webapp_without_api.url)
    page.get_by_label("Photo").set_input_files(photo("dandelion", 0))
    with page.expect_response(re.compile(r"/predict$")) as answer:
        page.get_by_role("button", name="Classify").click()
    assert answer.value.status == 503
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Predictions are unavailable right now"
    )
    shoot(page, "api-unavailable")


def test_the_model_page_names_the_served_model(page: Page, live_webapp):
    page.goto(live_webapp.url)
    page.get_by_role("link", name="Model").click()
    expect(page.locator("#model-name")).to_have_text("plantops-classifier")
    expect(page.locator("#model-version")).to_have_text("local")
    expect(page.locator(".facts")).to_contain_text(", ".join(LABELS))
    shoot(page, "model")
