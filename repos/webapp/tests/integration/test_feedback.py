"""Feedback into real S3 (SeaweedFS) and a real `plants_data` table (MariaDB): pending review,
with the visitor's and the model's labels and a pseudonymous submitter; the abuse limits."""

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from mysql.connector.connection import MySQLConnection
from plantops_infra.processes import free_port

from plantops_webapp.feedback import FeedbackStore
from plantops_webapp.main import create_app
from tests.conftest import env_settings, make_settings, site_client
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
    assert "sent to review" in answer.text
    key = f"feedback/{sha}.jpg"
    url_source = f"s3://{s3_bucket.name}/{key}"
    assert [row[1:] for row in plants_rows(connection)] == [(url_source, None, label)]
    columns = "review_status, proposed_label, model_label, model_version, submitter_id"
    [(state, proposed, model_label, version, submitter)] = plants_rows(connection, columns)
    assert (state, proposed, model_label, version) == ("pending", label, label, "local")
    assert re.fullmatch(r"[0-9a-f]{64}", submitter)  # a keyed hash, not an address
    assert "testclient" not in submitter
    stored = s3_bucket.server.client().get_object(s3_bucket.name, key)
    assert stored.read() == image
    assert stored.headers["Content-Type"] == "image/jpeg"

    # The same photo again, even with another label: no second row, and the user is told.
    location, page = show_result(webapp, image)
    other = next(lbl for lbl in LABELS if lbl != label)
    again = send_feedback(webapp, location, page, verdict="wrong", label=other)
    assert again.status_code == 200
    assert "already sent" in again.text
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
    with site_client(create_app(settings)) as client:
        location, page = show_result(client, photo("dandelion", 11).read_bytes())
        answer = send_feedback(client, location, page, verdict="correct")
    assert answer.status_code == 503
    assert "was not saved" in answer.text
    assert plants_rows(connection) == []


def test_a_correction_keeps_what_the_model_said_and_its_confidence(webapp, plants_db):
    _, connection = plants_db
    location, page = show_result(webapp, photo("dandelion", 12).read_bytes())
    model_label = predicted_label(page)
    other = next(lbl for lbl in LABELS if lbl != model_label)
    send_feedback(webapp, location, page, verdict="wrong", label=other)
    columns = "label, proposed_label, model_label, model_confidence, submitted_at"
    [(label, proposed, said, confidence, when)] = plants_rows(connection, columns)
    assert (label, proposed, said) == (other, other, model_label)
    assert 0 < confidence <= 1 and when is not None


def test_one_visitor_cannot_open_or_answer_another_visitors_result(webapp, inference_api):
    location, _ = show_result(webapp, photo("grass", 13).read_bytes())
    with site_client(create_app(webapp.app.state.settings)) as stranger:
        assert stranger.get(location).status_code == 404
        assert stranger.get(f"{location}/image").status_code == 404
    assert webapp.get(location).status_code == 200


def test_a_feedback_token_is_bound_to_its_upload_and_session(webapp, plants_db):
    _, connection = plants_db
    first, first_page = show_result(webapp, photo("grass", 14).read_bytes())
    second, _ = show_result(webapp, photo("grass", 15).read_bytes())
    # The token of the first result does not work on the second upload.
    answer = send_feedback(webapp, second, first_page, verdict="correct")
    assert answer.status_code == 403
    # Nor in another session, even with the cookie-less token copied over.
    with site_client(create_app(webapp.app.state.settings)) as other:
        token = csrf_token_in(first_page)
        answer = other.post(f"{first}/feedback", data={"csrf_token": token, "verdict": "correct"})
        assert answer.status_code == 404  # the upload is not this visitor's
    assert plants_rows(connection) == []


def test_a_post_from_another_origin_is_refused_before_anything_happens(webapp, plants_db):
    _, connection = plants_db
    location, page = show_result(webapp, photo("grass", 16).read_bytes())
    data = {"csrf_token": csrf_token_in(page), "verdict": "correct"}
    evil = webapp.post(
        f"{location}/feedback", data=data, headers={"origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert "not sent from this site" in evil.text
    no_origin = webapp.post(f"{location}/feedback", data=data, headers={"origin": ""})
    assert no_origin.status_code == 403
    referer = {"origin": "", "referer": f"http://testserver{location}"}
    assert webapp.post(f"{location}/feedback", data=data, headers=referer).status_code == 200
    assert len(plants_rows(connection)) == 1


@pytest.fixture
def strict_webapp(inference_api, s3_bucket, plants_db):
    """Low limits so that a test reaches them quickly."""
    database, _ = plants_db
    settings = make_settings(
        inference_api,
        webapp_feedback_per_minute=3,
        webapp_max_pending_reviews=2,
        **env_settings(s3_bucket.env()),
        **env_settings(database.env()),
    )
    with site_client(create_app(settings)) as client:
        yield client


def test_a_feedback_flood_gets_429_and_only_pending_rows(strict_webapp, plants_db):
    _, connection = plants_db
    answers = []
    for index in range(5):
        location, page = show_result(strict_webapp, photo("dandelion", 20 + index).read_bytes())
        answers.append(send_feedback(strict_webapp, location, page, verdict="correct"))
    codes = [answer.status_code for answer in answers]
    assert codes[:2] == [200, 200]
    assert codes[2:] == [429, 429, 429]  # the pending cap, then the rate limit
    assert "waiting for a reviewer" in answers[2].text
    assert "faster than this site accepts" in answers[3].text
    assert int(answers[3].headers["retry-after"]) > 0
    assert [row[0] for row in plants_rows(connection, "review_status")] == ["pending"] * 2


def test_the_same_photo_counts_once_against_the_pending_cap(strict_webapp, plants_db):
    _, connection = plants_db
    image = photo("grass", 30).read_bytes()
    for _ in range(2):
        location, page = show_result(strict_webapp, image)
        assert send_feedback(strict_webapp, location, page, verdict="correct").status_code == 200
    location, page = show_result(strict_webapp, photo("grass", 31).read_bytes())
    assert send_feedback(strict_webapp, location, page, verdict="correct").status_code == 200
    assert len(plants_rows(connection)) == 2


def test_feedback_connections_use_the_pure_python_protocol(inference_api, s3_bucket, plants_db):
    """The C extension once segfaulted the webapp under concurrent feedback (feedback.py,
    `_connect`); a crash cannot be provoked on demand, so this checks that the protocol
    which cannot crash the process is the one in use, on a real connection."""
    database, _ = plants_db
    settings = make_settings(
        inference_api, **env_settings(s3_bucket.env()), **env_settings(database.env())
    )
    with FeedbackStore(settings).database() as connection:
        assert type(connection) is MySQLConnection
        cursor = connection.cursor()
        cursor.execute("SELECT COUNT(*) FROM plants_data")
        assert cursor.fetchone()[0] == 0
