"""Issue 17: an out-of-distribution answer reads "does not look like a ... photo the model
knows", and a visitor may propose a label the model does not know, which goes to review
and, once accepted, is a `plants_data` row.

Real inference API (tiny model), real S3 (SeaweedFS), real MariaDB. The one stand-in:
`NoveltyStandIn` (tests/support.py), a real HTTP server in front of the real API that sets
the two novelty fields on its answers, because the tiny model has no novelty reference
(the API's novelty scoring arrives in its own branch of issue 17).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from plantops_webapp.main import create_app
from plantops_webapp.reviewers import hash_password
from tests.conftest import env_settings, make_settings, site_client
from tests.support import LABELS, csrf_token_in, photo, plants_rows

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
LOCAL = "http://127.0.0.1"  # reviewer pages allow plain http on loopback only
# Built here from the tiny model's three labels, in the API's order: never two fixed words.
UNFAMILIAR = (
    f"This does not look like a {', '.join(LABELS[:-1])} or {LABELS[-1]} photo the model knows"
)


@pytest.fixture
def site(novelty, s3_bucket, plants_db) -> Iterator[TestClient]:
    """The web app on the stand-in, with S3, the database and one reviewer account."""
    database, _ = plants_db
    settings = make_settings(
        novelty.url,
        webapp_reviewers={"rita": hash_password(PASSWORD)},
        **env_settings(s3_bucket.env()),
        **env_settings(database.env()),
    )
    with site_client(create_app(settings), base_url=LOCAL) as client:
        client.headers["origin"] = LOCAL
        yield client


def show_result(client: TestClient, name: str, index: int) -> tuple[str, str]:
    token = csrf_token_in(client.get("/").text)
    image = photo(name, index).read_bytes()
    answer = client.post(
        "/predict",
        data={"csrf_token": token},
        files={"file": ("plant.jpg", image, "image/jpeg")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    return location, client.get(location).text


def model_label(page: str) -> str:
    return re.search(r'id="predicted-label">([^<]+)<', page).group(1)


def propose(client: TestClient, location: str, page: str, name: str):
    data = {"csrf_token": csrf_token_in(page), "verdict": "new", "new_label": name}
    return client.post(f"{location}/feedback", data=data)


def sign_in(client: TestClient) -> None:
    token = csrf_token_in(client.get("/review/sign-in").text)
    data = {"csrf_token": token, "name": "rita", "password": PASSWORD}
    assert client.post("/review/sign-in", data=data, follow_redirects=False).status_code == 303


def decide(client: TestClient, item_id: int, action: str, label: str | None = None):
    token = csrf_token_in(client.get("/review").text)
    data = {"csrf_token": token, "action": action, **({"label": label} if label else {})}
    return client.post(f"/review/items/{item_id}", data=data)


def test_an_unfamiliar_photo_says_so_and_shows_the_closest_label_second(site):
    _, page = show_result(site, "dandelion", 3)
    assert UNFAMILIAR in page
    assert "<title>Not recognised" in page
    assert "It looks like" not in page
    # The closest label and its confidence, in words as well as the notice's colour.
    assert re.search(r"Closest label: <span [^>]*>(dandelion|grass|clover)</span>", page)
    assert re.search(r'id="confidence">\d+\.\d%<', page)
    assert "Not recognised.</strong>" in page and 'role="status"' in page
    assert 'id="novelty-score">9.25<' in page
    assert 'id="low-confidence"' not in page  # one notice, not two
    assert "Do you know what it is?" in page
    assert page.count('meter id="p-') == len(LABELS)  # the bars stay, for the curious


@pytest.mark.parametrize("verdict", [None, (0.4, False)], ids=["legacy-null", "familiar"])
def test_a_familiar_or_legacy_answer_gives_the_page_as_before(site, novelty, verdict):
    novelty.verdict = verdict
    _, page = show_result(site, "dandelion", 3)
    assert f'It looks like <span class="label" id="predicted-label">{model_label(page)}<' in page
    assert "does not look like" not in page and "Not recognised" not in page
    assert 'id="novelty-score"' not in page
    assert "Was the model right?" in page


def test_a_proposed_label_goes_to_review_and_an_accept_makes_it_a_row(site, plants_db):
    _, connection = plants_db
    location, page = show_result(site, "dandelion", 11)
    said = model_label(page)

    answer = propose(site, location, page, "  Sweet Pea ")
    assert answer.status_code == 200
    assert "sent to review as <strong>sweet-pea</strong>" in answer.text
    assert 'id="new-label-note"' in answer.text
    columns = "review_status, label, proposed_label, model_label"
    assert plants_rows(connection, columns) == [("pending", "sweet-pea", "sweet-pea", said)]
    counted = 'plantops_webapp_feedback_total{label="(new)",verdict="proposed"} 1.0'
    assert counted in site.get("/metrics").text  # free text never becomes a metric label

    sign_in(site)
    queue = site.get("/review").text
    [item_id] = [int(n) for n in re.findall(r'id="item-(\d+)"', queue)]
    assert 'class="tag tag-new">new label<' in queue
    assert f"it knows {', '.join(LABELS)}" in queue
    assert "Accepted photos labelled sweet-pea so far: 0" in queue
    assert "Accept as new label sweet-pea" in queue
    assert all(f"<option>{label}</option>" in queue for label in LABELS)  # or relabel

    assert "Accepted" in decide(site, item_id, "accept").text
    rows = plants_rows(connection, "review_status, label, review_action, reviewed_by")
    assert rows == [("accepted", "sweet-pea", "accepted", "rita")]


def test_a_proposal_can_be_relabelled_to_a_known_label_or_rejected(site, plants_db):
    _, connection = plants_db
    for index, name in ((12, "clovers"), (13, "my-phone")):
        location, page = show_result(site, "grass", index)
        assert propose(site, location, page, name).status_code == 200
    sign_in(site)
    ids = [row[0] for row in plants_rows(connection)]
    assert decide(site, ids[0], "relabel", "clover").status_code == 200
    assert "Rejected" in decide(site, ids[1], "reject").text
    columns = "review_status, label, proposed_label, review_action"
    assert plants_rows(connection, columns) == [
        ("accepted", "clover", "clovers", "relabelled"),
        ("rejected", "my-phone", "my-phone", "rejected"),
    ]


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("unknown", '"unknown" cannot be a label: it does not name a plant'),
        ("rose!", '"rose!" cannot be a label name. Use 2 to 40 letters'),
        ("x", '"x" is 1 characters long'),
        ("", "Type the name of the plant"),
    ],
)
def test_an_invalid_label_name_is_refused_with_the_reason_and_nothing_is_stored(
    site, plants_db, s3_bucket, typed, reason
):
    _, connection = plants_db
    location, page = show_result(site, "dandelion", 14)
    refused = propose(site, location, page, typed)
    assert refused.status_code == 400
    assert reason in refused.text.replace("&#34;", '"')
    assert 'id="new-label-error" role="alert"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert f'name="new_label" value="{typed}"' in refused.text.replace("&#34;", '"')
    assert plants_rows(connection) == []
    assert not list(s3_bucket.server.client().list_objects(s3_bucket.name, "feedback/"))
    # The same upload can still be sent, with a valid name.
    assert propose(site, location, refused.text, "clover").status_code == 200


def test_a_known_label_typed_as_new_is_that_label(site, plants_db):
    _, connection = plants_db
    location, page = show_result(site, "grass", 15)
    other = next(label for label in LABELS if label != model_label(page))
    answer = propose(site, location, page, f" {other.upper()} ")
    assert answer.status_code == 200 and 'id="new-label-note"' not in answer.text
    assert plants_rows(connection, "label, proposed_label") == [(other, other)]


def test_proposals_count_against_the_pending_cap_like_any_feedback(novelty, s3_bucket, plants_db):
    database, _ = plants_db
    settings = make_settings(
        novelty.url,
        webapp_max_pending_reviews=1,
        **env_settings(s3_bucket.env()),
        **env_settings(database.env()),
    )
    with site_client(create_app(settings)) as client:
        location, page = show_result(client, "dandelion", 16)
        assert propose(client, location, page, "buttercup").status_code == 200
        location, page = show_result(client, "dandelion", 17)
        capped = propose(client, location, page, "celandine")
    assert capped.status_code == 429
    assert "waiting for a reviewer" in capped.text
    _, connection = plants_db
    assert plants_rows(connection, "label") == [("buttercup",)]


def test_the_model_page_says_when_the_model_answers_not_a_photo_it_knows(site, novelty):
    page = site.get("/model").text
    assert "when the novelty score (knn-cosine) is above 0.421; 2.0% of validation" in page
    novelty.model_novelty = None  # a model exported without a novelty reference
    page = site.get("/model").text
    assert "not available: this model has no novelty reference" in page
