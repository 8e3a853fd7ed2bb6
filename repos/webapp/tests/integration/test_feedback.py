"""Feedback into real S3 (SeaweedFS) and a real `plants_data` table (MariaDB)."""

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from plantops_infra.processes import free_port

from plantops_webapp.main import create_app
from tests.conftest import env_settings, make_settings
from tests.support import LABELS, csrf_token_in, photo, plants_rows

pytestmark = pytest.mark.integration


def show_result(client: TestClient, image: bytes) -> tuple[str, str]:
    token = csrf_token_in(client.get("/").text)
    answer = client.post(
        "/predict",
        data={"csrf_token": token},
        files={"file": ("plant.jpg", image, "image/jpeg")},
        follow_redirects=False,
    )
    location = answer.headers["location"]
    return location, client.get(location).text


def predicted_label(page: str) -> str:
    return re.search(r'id="predicted-label">([^<]+)<', page).group(1)


def send_feedback(client: TestClient, location: str, page: str, **fields: str):
    data = {"csrf_token": csrf_token_in(page), **fields}
    return client.post(f"{location}/feedback", data=data)


def test_correct_feedback_stores_the_photo_and_adds_a_row_once(webapp, s3_bucket, plants_db):
    _, connection = plants_db
    image = photo("dandelion", 5).read_bytes()
    sha = hashlib.sha256(image).hexdigest()
    location, page = show_result(webapp, image)
    label = predicted_label(page)

    answer = send_feedback(webapp, location, page, verdict="correct")
    assert answer.status_code == 200
    assert "added to the dataset" in answer.text
    key = f"feedback/{sha}.jpg"
    url_source = f"s3://{s3_bucket.name}/{key}"
    assert [row[1:] for row in plants_rows(connection)] == [(url_source, None, label)]
    stored = s3_bucket.server.client().get_object(s3_bucket.name, key)
    assert stored.read() == image
    assert stored.headers["Content-Type"] == "image/jpeg"

    # The same photo again, even with another label: no second row, and the user is told.
    location, page = show_result(webapp, image)
    other = next(lbl for lbl in LABELS if lbl != label)
    again = send_feedback(webapp, location, page, verdict="wrong", label=other)
    assert again.status_code == 200
    assert "already in the dataset" in again.text
    assert len(plants_rows(connection)) == 1


def test_a_correction_stores_the_label_the_user_chose(webapp, plants_db):
    _, connection = plants_db
    location, page = show_result(webapp, photo("grass", 7).read_bytes())
    other = next(lbl for lbl in LABELS if lbl != predicted_label(page))
    answer = send_feedback(webapp, location, page, verdict="wrong", label=other)
    assert answer.status_code == 200
    assert [row[3] for row in plants_rows(connection)] == [other]
    metrics = webapp.get("/metrics").text
    expected = f'plantops_webapp_feedback_total{{label="{other}",verdict="corrected"}} 1.0'
    assert expected in metrics


def test_a_label_the_model_does_not_know_is_refused(webapp, plants_db):
    _, connection = plants_db
    location, page = show_result(webapp, photo("grass", 8).read_bytes())
    answer = send_feedback(webapp, location, page, verdict="wrong", label="oak tree")
    assert answer.status_code == 400
    assert "Choose the label" in answer.text
    assert plants_rows(connection) == []


def test_feedback_without_the_csrf_token_changes_nothing(webapp, plants_db):
    _, connection = plants_db
    location, _ = show_result(webapp, photo("grass", 9).read_bytes())
    answer = webapp.post(f"{location}/feedback", data={"verdict": "correct"})
    assert answer.status_code == 403
    assert plants_rows(connection) == []


def test_s3_down_gives_a_503_and_adds_no_row(inference_api, plants_db):
    database, connection = plants_db
    settings = make_settings(
        inference_api,
        s3_endpoint=f"127.0.0.1:{free_port()}",
        s3_access_key="nobody",
        s3_secret_key="nothing-here",
        **env_settings(database.env()),
    )
    with TestClient(create_app(settings)) as client:
        location, page = show_result(client, photo("dandelion", 11).read_bytes())
        answer = send_feedback(client, location, page, verdict="correct")
    assert answer.status_code == 503
    assert "was not saved" in answer.text
    assert plants_rows(connection) == []
