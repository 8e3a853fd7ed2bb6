"""The reviewer pages against the real inference API, S3 (SeaweedFS) and MariaDB.

The one stand-in: `fake_airflow`, a real HTTP server on loopback that answers Airflow 3's
two REST calls (`POST /auth/token`, `POST /api/v2/dags/{id}/dagRuns`) and records them.
A real Airflow API server needs orchestration's environment and a parsed DAG, which the
web app's tests do not start; the request shapes follow Airflow 3.3's own models.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from plantops_webapp import review
from plantops_webapp.main import create_app
from plantops_webapp.reviewers import hash_password
from tests.conftest import env_settings, make_settings, site_client
from tests.support import csrf_token_in, photo, plants_rows

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
# Reviewer pages refuse plain http except on a loopback address (local development).
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def accounts() -> dict[str, str]:
    return {"rita": hash_password(PASSWORD)}


def review_settings(inference_api, s3_bucket, plants_db, accounts, **overrides):
    database, _ = plants_db
    return make_settings(
        inference_api,
        webapp_reviewers=accounts,
        **env_settings(s3_bucket.env()),
        **env_settings(database.env()),
        **overrides,
    )


@pytest.fixture
def site(inference_api, s3_bucket, plants_db, accounts):
    settings = review_settings(inference_api, s3_bucket, plants_db, accounts)
    with site_client(create_app(settings), base_url=LOCAL) as client:
        client.headers["origin"] = LOCAL
        yield client


def sign_in(client, name: str = "rita", password: str = PASSWORD):
    token = csrf_token_in(client.get("/review/sign-in").text)
    data = {"csrf_token": token, "name": name, "password": password}
    return client.post("/review/sign-in", data=data, follow_redirects=False)


def add_pending(connection, s3_bucket, url_name: str, proposed: str, model: str, confidence):
    """A pending row (and its photo) as the web app's feedback writes them."""
    image = photo("dandelion", 40).read_bytes()
    key = f"feedback/{url_name}.jpg"
    s3_bucket.server.client().put_object(s3_bucket.name, key, io.BytesIO(image), len(image))
    cursor = connection.cursor()
    cursor.execute(
        "INSERT INTO plants_data (url_source, label, review_status, proposed_label, model_label, "
        "model_confidence, model_version, submitter_id, submitted_at) "
        "VALUES (%s, %s, 'pending', %s, %s, %s, 'local', %s, UTC_TIMESTAMP())",
        (f"s3://{s3_bucket.name}/{key}", proposed, proposed, model, confidence, "f" * 64),
    )
    connection.commit()
    return int(cursor.lastrowid)


def test_the_queue_needs_a_signed_in_reviewer(site):
    for path in ("/review", "/review/items/1/image"):
        answer = site.get(path, follow_redirects=False)
        assert answer.status_code in (303, 404)
        assert answer.status_code == 404 or answer.headers["location"] == "/review/sign-in"
    token = csrf_token_in(site.get("/").text)
    decision = site.post("/review/items/1", data={"csrf_token": token, "action": "accept"})
    assert decision.url.path == "/review/sign-in"


def test_sign_in_sets_a_strict_httponly_session_cookie(site):
    answer = sign_in(site)
    assert answer.status_code == 303 and answer.headers["location"] == "/review"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("plantops_reviewer=rita.")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/review" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1: local development
    assert site.get("/review").status_code == 200


def test_sign_in_over_https_gets_a_secure_cookie_and_plain_http_elsewhere_is_refused(
    inference_api, s3_bucket, plants_db, accounts
):
    settings = review_settings(inference_api, s3_bucket, plants_db, accounts)
    with site_client(create_app(settings), base_url="https://plants.example") as client:
        client.headers["origin"] = "https://plants.example"
        assert "Secure" in sign_in(client).headers["set-cookie"]
    with site_client(create_app(settings), base_url="http://plants.example") as client:
        client.headers["origin"] = "http://plants.example"
        refused = sign_in(client)
    assert refused.status_code == 403 and "needs HTTPS" in refused.text
    assert "set-cookie" not in refused.headers or "plantops_reviewer" not in refused.headers.get(
        "set-cookie", ""
    )


def test_wrong_passwords_lock_the_account_even_for_the_right_password(site):
    answers = [sign_in(site, password=f"guess {n}") for n in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert "The name or the password is wrong" in answers[0].text
    locked = sign_in(site)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert "plantops_reviewer" not in locked.headers.get("set-cookie", "")


def test_an_unknown_name_is_answered_and_locked_like_a_known_one(site):
    answers = [sign_in(site, name="nobody", password="x") for _ in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert "The name or the password is wrong" in answers[0].text


def test_a_forged_or_cross_site_session_is_refused(site):
    site.cookies.set("plantops_reviewer", "rita.99999999999.0000", path="/review")
    assert site.get("/review", follow_redirects=False).status_code == 303
    sign_in(site)
    token = csrf_token_in(site.get("/review").text)
    evil = site.post(
        "/review/items/1",
        data={"csrf_token": token, "action": "accept"},
        headers={"origin": "https://evil.example"},
    )
    assert evil.status_code == 403


def test_the_queue_shows_disagreements_first_then_the_least_confident(site, s3_bucket, plants_db):
    _, connection = plants_db
    agree_unsure = add_pending(connection, s3_bucket, "a", "grass", "grass", 0.51)
    disagree_sure = add_pending(connection, s3_bucket, "b", "grass", "dandelion", 0.95)
    agree_sure = add_pending(connection, s3_bucket, "c", "grass", "grass", 0.99)
    disagree_unsure = add_pending(connection, s3_bucket, "d", "dandelion", "grass", 0.55)
    sign_in(site)
    page = site.get("/review").text
    order = [int(n) for n in re.findall(r'id="item-(\d+)"', page)]
    assert order == [disagree_unsure, disagree_sure, agree_unsure, agree_sure]
    assert 'id="pending-count">4<' in page
    image = site.get(f"/review/items/{disagree_sure}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == photo("dandelion", 40).read_bytes()


def decide(site, item_id: int, action: str, label: str | None = None):
    token = csrf_token_in(site.get("/review").text)
    data = {"csrf_token": token, "action": action, **({"label": label} if label else {})}
    return site.post(f"/review/items/{item_id}", data=data)


def test_each_decision_records_who_what_and_when(site, s3_bucket, plants_db):
    _, connection = plants_db
    accepted = add_pending(connection, s3_bucket, "e", "grass", "dandelion", 0.6)
    relabelled = add_pending(connection, s3_bucket, "f", "grass", "dandelion", 0.6)
    rejected = add_pending(connection, s3_bucket, "g", "grass", "dandelion", 0.6)
    sign_in(site)
    assert "Accepted:" in decide(site, accepted, "accept").text
    assert decide(site, relabelled, "relabel", "dandelion").status_code == 200
    assert "Rejected" in decide(site, rejected, "reject").text
    rows = plants_rows(connection, "id, review_status, label, review_action, reviewed_by")
    assert [row for row in rows] == [
        (accepted, "accepted", "grass", "accepted", "rita"),
        (relabelled, "accepted", "dandelion", "relabelled", "rita"),
        (rejected, "rejected", "grass", "rejected", "rita"),
    ]
    times = plants_rows(connection, "reviewed_at, proposed_label")
    assert all(when is not None for when, _ in times)
    assert [proposed for _, proposed in times] == ["grass"] * 3  # what the visitor said stays
    again = decide(site, accepted, "reject")
    assert again.status_code == 409 and "no longer waiting" in again.text
    assert plants_rows(connection, "review_status")[0] == ("accepted",)
    assert 'id="queue-empty"' in site.get("/review").text


def test_accepted_since_counts_only_acceptances_after_the_moment(s3_bucket, plants_db):
    _, connection = plants_db
    first = add_pending(connection, s3_bucket, "h", "grass", "grass", 0.9)
    second = add_pending(connection, s3_bucket, "i", "grass", "grass", 0.9)
    review.decide(connection, first, review.Action.ACCEPT, "rita", None)
    review.decide(connection, second, review.Action.REJECT, "rita", None)
    now = datetime.now(UTC)
    assert review.accepted_since(connection, now - timedelta(minutes=5)) == 1
    assert review.accepted_since(connection, now + timedelta(minutes=5)) == 0


def test_without_airflow_the_retrain_button_is_disabled_with_a_reason(site):
    sign_in(site)
    page = site.get("/review").text
    assert 'id="retrain-off"' in page and "not configured" in page
    assert 'id="accepted-since">unknown' in page  # the tiny model has no training time


@pytest.fixture
def fake_airflow() -> Iterator[tuple[str, list]]:
    calls: list[tuple[str, dict, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            calls.append((self.path, body, self.headers.get("Authorization", "")))
            if self.path == "/auth/token":
                ok = body == {"username": "airflow-bot", "password": "bot-secret"}
                status, answer = (201, {"access_token": "jwt-1"}) if ok else (401, {})
            elif self.path == "/api/v2/dags/plants_train/dagRuns":
                ok = self.headers.get("Authorization") == "Bearer jwt-1"
                status, answer = (200, {"dag_run_id": "manual__1"}) if ok else (403, {})
            else:
                status, answer = 404, {}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def test_retrain_now_triggers_plants_train_through_airflows_rest_api(
    inference_api, s3_bucket, plants_db, accounts, fake_airflow
):
    url, calls = fake_airflow
    settings = review_settings(
        inference_api,
        s3_bucket,
        plants_db,
        accounts,
        airflow_url=url,
        airflow_username="airflow-bot",
        airflow_password="bot-secret",
    )
    with site_client(create_app(settings), base_url=LOCAL) as client:
        client.headers["origin"] = LOCAL
        sign_in(client)
        token = csrf_token_in(client.get("/review").text)
        answer = client.post("/review/retrain", data={"csrf_token": token})
        assert answer.status_code == 200 and "Training was queued" in answer.text
        again = client.post("/review/retrain", data={"csrf_token": token})
        assert again.status_code == 429  # once a minute per reviewer
    assert [path for path, _, _ in calls] == ["/auth/token", "/api/v2/dags/plants_train/dagRuns"]
    run_body = calls[1][1]
    assert run_body["logical_date"] is None and "rita" in run_body["note"]


def test_retrain_with_wrong_airflow_credentials_says_so(
    inference_api, s3_bucket, plants_db, accounts, fake_airflow
):
    url, _ = fake_airflow
    settings = review_settings(
        inference_api,
        s3_bucket,
        plants_db,
        accounts,
        airflow_url=url,
        airflow_username="airflow-bot",
        airflow_password="wrong",
    )
    with site_client(create_app(settings), base_url=LOCAL) as client:
        client.headers["origin"] = LOCAL
        sign_in(client)
        token = csrf_token_in(client.get("/review").text)
        answer = client.post("/review/retrain", data={"csrf_token": token})
    assert answer.status_code == 502
    assert "Airflow refused the sign-in (HTTP 401)" in answer.text
