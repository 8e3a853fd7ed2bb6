"""Only accepted rows train: feedback waiting for review, or rejected, never enters a manifest.

Real MariaDB and SeaweedFS. The feedback rows are written the way the web app writes them:
the photo under feedback/ in the bucket, the row with review_status 'pending'.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest

from plantops_orchestration import db, ingest
from plantops_orchestration.dataset import split_of as split_with

from .conftest import jpeg, row_by_id

pytestmark = pytest.mark.integration


def put_feedback(conn, s3_bucket, seed: int, label: str) -> tuple[int, str]:
    """A photo in feedback/ and its pending row, as the web app stores them; (id, sha256)."""
    image = jpeg(seed)
    sha = hashlib.sha256(image).hexdigest()
    key = f"feedback/{sha}.jpg"
    s3_bucket.server.client().put_object(s3_bucket.name, key, io.BytesIO(image), len(image))
    cursor = conn.cursor()
    cursor.execute(
        "INSERT INTO plants_data (url_source, label, proposed_label, model_label, "
        "model_confidence, model_version, submitter_id, submitted_at) "
        "VALUES (%s, %s, %s, 'dandelion', 0.9, '3', %s, CURRENT_TIMESTAMP)",
        (f"s3://{s3_bucket.name}/{key}", label, label, "a" * 64),
    )
    conn.commit()
    return int(cursor.lastrowid), sha


def review(conn, row_id: int, state: str, label: str | None = None) -> None:
    cursor = conn.cursor()
    cursor.execute(
        "UPDATE plants_data SET review_status = %s, label = COALESCE(%s, label), "
        "reviewed_by = 'rita', review_action = %s, reviewed_at = CURRENT_TIMESTAMP WHERE id = %s",
        (state, label, state, row_id),
    )
    conn.commit()


def manifest_shas(s3_bucket, version: str) -> dict[str, str]:
    client = s3_bucket.server.client()
    response = client.get_object(s3_bucket.name, f"agg/{version}/manifest.csv")
    rows = csv.DictReader(io.StringIO(response.read().decode()))
    return {row["sha256"]: row["label"] for row in rows}


def test_a_feedback_row_is_pending_by_default_and_is_not_ingested(settings, conn, s3_bucket):
    row_id, _ = put_feedback(conn, s3_bucket, 1, "grass")
    assert row_by_id(conn, row_id)["review_status"] == db.PENDING_REVIEW
    good, _ = db.add_row(conn, "https://example.org/x.jpg", "grass")  # an operator's source
    assert row_by_id(conn, good)["review_status"] == db.ACCEPTED
    assert db.pending_row_ids(conn, settings.max_attempts) == [good]


def test_only_accepted_feedback_enters_the_dataset_with_the_reviewers_label(
    settings, conn, s3_bucket
):
    accepted, accepted_sha = put_feedback(conn, s3_bucket, 2, "grass")
    relabelled, relabelled_sha = put_feedback(conn, s3_bucket, 3, "grass")
    rejected, rejected_sha = put_feedback(conn, s3_bucket, 4, "grass")
    _, pending_sha = put_feedback(conn, s3_bucket, 5, "grass")
    review(conn, accepted, db.ACCEPTED)
    review(conn, relabelled, db.ACCEPTED, label="dandelion")
    review(conn, rejected, db.REJECTED)

    result = ingest.run_all(settings)

    assert result["stored"] == 2 and result["failed_count"] == 0
    in_manifest = manifest_shas(s3_bucket, result["dataset_version"])
    assert in_manifest == {accepted_sha: "grass", relabelled_sha: "dandelion"}
    assert rejected_sha not in in_manifest and pending_sha not in in_manifest
    assert row_by_id(conn, rejected)["status"] == db.NEW  # never fetched
    assert ingest.run_all(settings)["rows"] == 0  # pending and rejected stay out on a rerun


def test_the_migration_runs_once_and_sends_old_unreviewed_feedback_to_review(settings):
    with db.connection(settings) as conn:
        db.run_script(conn, db.sql_file("01_schema.sql"))
        cursor = conn.cursor()
        cursor.execute(
            "INSERT INTO plants_data (url_source, label) VALUES "
            "('https://example.org/canonical.jpg', 'grass'), "
            "('s3://plantops-data/feedback/old.jpg', 'grass')"
        )
        conn.commit()
        first = db.init_db(conn, seed=True)
        assert "migration 0001_feedback_review.sql" in first
        assert db.init_db(conn, seed=True) == []  # idempotent
        assert db.review_counts(conn) == {"accepted": 401, "pending": 1}


def split_of(sha: str) -> str:
    return split_with(sha, 0.70, 0.15)  # the default fractions the settings fixture keeps


def stats(s3_bucket, version: str) -> dict:
    response = s3_bucket.server.client().get_object(s3_bucket.name, f"agg/{version}/stats.json")
    return json.loads(response.read())


def accept_feedback(conn, s3_bucket, seeds, label: str) -> list[str]:
    shas = []
    for seed in seeds:
        row_id, sha = put_feedback(conn, s3_bucket, seed, label)
        review(conn, row_id, db.ACCEPTED)
        shas.append(sha)
    return shas


def test_a_new_label_with_one_accepted_photo_is_held_back_until_it_has_enough(
    settings, conn, s3_bucket
):
    # A reviewer accepted a visitor's new label "sweet-pea" (issue 17): with one photo it
    # must not reach the manifest (training refuses a label without a train photo).
    settings = settings.model_copy(update={"dataset_min_label_images": 3})
    known = accept_feedback(conn, s3_bucket, range(10, 16), "grass")
    known += accept_feedback(conn, s3_bucket, range(20, 26), "dandelion")
    first = ingest.run_all(settings)
    assert first["held_back"] == {} and first["published"] is True

    [single] = accept_feedback(conn, s3_bucket, [30], "sweet-pea")
    second = ingest.run_all(settings)

    assert second["stored"] == 1  # fetched and stored like any accepted row...
    assert second["dataset_version"] == first["dataset_version"]  # ...but no new version
    assert second["published"] is False
    assert second["held_back"] == {
        "sweet-pea": {
            "images": 1,
            "train": int(split_of(single) == "train"),
            "reason": "1 accepted photo(s), fewer than the 3 required",
        }
    }
    assert set(manifest_shas(s3_bucket, first["dataset_version"])) == set(known)
    listed = stats(s3_bucket, first["dataset_version"])  # rewritten: says what is left out
    assert listed["held_back"] == second["held_back"] and listed["min_label_images"] == 3
    assert "sweet-pea" not in listed["labels"]

    more = accept_feedback(conn, s3_bucket, [31, 32], "sweet-pea")
    assert any(split_of(sha) == "train" for sha in [single, *more])  # seeds chosen so
    third = ingest.run_all(settings)

    assert third["held_back"] == {} and third["published"] is True
    assert third["dataset_version"] != first["dataset_version"]
    in_manifest = manifest_shas(s3_bucket, third["dataset_version"])
    assert [sha for sha, label in in_manifest.items() if label == "sweet-pea"] == sorted(
        [single, *more]
    )
    assert stats(s3_bucket, third["dataset_version"])["counts"]["sweet-pea"]["train"] >= 1
