"""Ingestion against a real MySQL, a real S3 and a real web server that misbehaves.

Each bad source must end as a failed row with a readable reason, and must not
stop the good ones from being stored.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from plantops_orchestration import db, ingest
from plantops_orchestration.config import get_settings
from plantops_orchestration.layout import parse_s3_uri

from .conftest import add_rows, objects, row_by_id

pytestmark = pytest.mark.integration


def read(s3_bucket, key: str) -> bytes:
    response = s3_bucket.server.client().get_object(s3_bucket.name, key)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def manifest(s3_bucket, version: str) -> list[dict]:
    text = read(s3_bucket, f"agg/{version}/manifest.csv").decode()
    return list(csv.DictReader(io.StringIO(text)))


def assert_every_url_s3_exists(conn, s3_bucket) -> int:
    cursor = conn.cursor()
    conn.commit()
    cursor.execute("SELECT url_s3 FROM plants_data WHERE url_s3 IS NOT NULL")
    keys = set(objects(s3_bucket))
    urls = [url for (url,) in cursor.fetchall()]
    for url in urls:
        bucket, key = parse_s3_uri(url)
        assert bucket == s3_bucket.name and key in keys, f"{url} points to no object"
    return len(urls)


def test_bad_sources_fail_with_a_reason_and_good_ones_are_stored(
    settings, conn, fault_server, s3_bucket
):
    base = fault_server.url
    cases = {
        "good": (f"{base}/img/1.jpg", "stored", None),
        "flaky": (f"{base}/flaky/2.jpg", "stored", None),
        "redirect": (f"{base}/redirect/3.jpg", "stored", None),
        "missing": (f"{base}/missing/4.jpg", "failed", "HTTP 404"),
        "broken": (f"{base}/broken/5.jpg", "failed", "HTTP 503"),
        "slow": (f"{base}/slow/6.jpg", "failed", "timed out"),
        "html": (f"{base}/html/7.jpg", "failed", "not an image (an HTML page)"),
        "truncated": (f"{base}/truncated/8.jpg", "failed", "truncated"),
        "huge": (f"{base}/huge/9.jpg", "failed", "over the limit"),
        "chunked": (f"{base}/chunked-huge/10.jpg", "failed", "over the limit"),
        "loop": (f"{base}/loop/11.jpg", "failed", "too many redirects"),
        "trickle": (f"{base}/trickle/12.jpg", "failed", "took over"),
    }
    row_ids = add_rows(conn, [(url, "grass") for url, _, _ in cases.values()])
    ids = dict(zip(cases, row_ids, strict=True))

    result = ingest.run_all(settings)

    for name, (_, status, reason) in cases.items():
        row = row_by_id(conn, ids[name])
        assert row["status"] == status, (name, row["last_error"])
        if reason is None:
            assert row["url_s3"].startswith(f"s3://{s3_bucket.name}/raw/grass/")
        else:
            assert reason in row["last_error"], (name, row["last_error"])
            assert row["url_s3"] is None
    assert row_by_id(conn, ids["missing"])["retryable"] == 0
    assert row_by_id(conn, ids["slow"])["retryable"] == 1
    assert fault_server.requests["/flaky/2.jpg"] == 2  # retried within the run
    assert fault_server.requests["/missing/4.jpg"] == 1  # a 404 is not retried
    assert result["stored"] == 3 and len(result["failed"]) == 9
    assert assert_every_url_s3_exists(conn, s3_bucket) == 3
    assert len(manifest(s3_bucket, result["dataset_version"])) == 3


def test_transient_failures_are_retried_by_later_runs_until_the_budget_is_spent(
    settings, conn, fault_server, monkeypatch
):
    monkeypatch.setenv("PLANTOPS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PLANTOPS_DOWNLOAD_RETRIES", "0")
    get_settings.cache_clear()
    settings = get_settings()
    slow, missing = add_rows(
        conn,
        [
            (f"{fault_server.url}/slow/1.jpg", "grass"),
            (f"{fault_server.url}/missing/2.jpg", "grass"),
        ],
    )
    assert ingest.select_rows(settings) == [slow, missing]
    ingest.run_all(settings)
    assert ingest.select_rows(settings) == [slow]  # a 404 is final, a timeout is not
    ingest.run_all(settings)
    assert ingest.select_rows(settings) == []
    row = row_by_id(conn, slow)
    assert (row["status"], row["attempts"]) == ("failed", 2)


def test_same_content_is_stored_once_and_reported(settings, conn, fault_server, s3_bucket):
    base = fault_server.url
    first, second, other_label = add_rows(
        conn,
        [
            (f"{base}/same/a.jpg", "grass"),
            (f"{base}/same/b.jpg", "grass"),
            (f"{base}/same/c.jpg", "clover"),
        ],
    )
    result = ingest.run_all(settings)

    original = row_by_id(conn, first)
    assert original["status"] == "stored"
    for row_id in (second, other_label):
        row = row_by_id(conn, row_id)
        assert row["status"] == "duplicate" and row["duplicate_of"] == first
        assert row["url_s3"] == original["url_s3"]
    assert "LABEL CONFLICT" in row_by_id(conn, other_label)["last_error"]
    assert [d["id"] for d in result["duplicates"]] == [second, other_label]
    assert len([k for k in objects(s3_bucket) if k.startswith(("raw/", "fmt/"))]) == 2
    assert [r["label"] for r in manifest(s3_bucket, result["dataset_version"])] == ["grass"]


def test_rerun_downloads_nothing_writes_nothing_and_keeps_the_version(
    settings, conn, fault_server, s3_bucket
):
    add_rows(conn, [(f"{fault_server.url}/img/{i}.jpg", "dandelion") for i in range(8)])
    add_rows(conn, [(f"{fault_server.url}/missing/{i}.jpg", "dandelion") for i in range(2)])
    first = ingest.run_all(settings)
    requests, stored = fault_server.total(), objects(s3_bucket)

    second = ingest.run_all(settings)

    assert fault_server.total() == requests
    assert objects(s3_bucket) == stored
    assert second["dataset_version"] == first["dataset_version"]
    assert (second["rows"], second["written"], second["published"]) == (0, False, False)
    latest = json.loads(read(s3_bucket, "agg/latest.json"))
    assert latest == {"dataset_version": first["dataset_version"]}


def test_new_rows_and_a_new_label_make_a_new_version_without_moving_old_images(
    settings, conn, fault_server, s3_bucket
):
    base = fault_server.url
    add_rows(conn, [(f"{base}/img/{i}.jpg", "dandelion") for i in range(20)])
    first = ingest.run_all(settings)
    add_rows(conn, [(f"{base}/img/{i}.jpg", "clover") for i in range(100, 110)])
    second = ingest.run_all(settings)

    assert second["dataset_version"] != first["dataset_version"]
    before = {r["sha256"]: r["split"] for r in manifest(s3_bucket, first["dataset_version"])}
    after = {r["sha256"]: r for r in manifest(s3_bucket, second["dataset_version"])}
    assert all(after[sha]["split"] == split for sha, split in before.items())
    stats = json.loads(read(s3_bucket, f"agg/{second['dataset_version']}/stats.json"))
    assert stats["labels"] == ["clover", "dandelion"]
    assert sum(stats["counts"]["clover"].values()) == 10
    for row in after.values():  # the manifest's keys are fmt/ JPEGs that exist
        assert read(s3_bucket, row["key"])[:3] == b"\xff\xd8\xff"


def test_s3_sources_from_the_webapp_are_ingested(settings, conn, s3_bucket):
    client = s3_bucket.server.client()
    from .conftest import jpeg

    data = jpeg(7)
    client.put_object(s3_bucket.name, "feedback/abc.jpg", io.BytesIO(data), len(data))
    good, gone = add_rows(
        conn,
        [
            (f"s3://{s3_bucket.name}/feedback/abc.jpg", "grass"),
            (f"s3://{s3_bucket.name}/feedback/gone.jpg", "grass"),
        ],
    )
    ingest.run_all(settings)
    assert row_by_id(conn, good)["status"] == "stored"
    failed = row_by_id(conn, gone)
    assert failed["status"] == "failed" and "NoSuchKey" in failed["last_error"]
    assert failed["retryable"] == 0


def test_canonical_urls_are_fetched_from_the_mirror(settings, conn, s3_bucket):
    with db.connection(settings) as seeded:
        db.init_db(seeded)  # the 400 canonical rows
    cursor = conn.cursor()
    conn.commit()
    cursor.execute("UPDATE plants_data SET status = 'done-elsewhere' WHERE id > 3")
    conn.commit()
    result = ingest.run_all(settings)
    assert result["stored"] == 3 and result["failed"] == []
    assert assert_every_url_s3_exists(conn, s3_bucket) == 3


def test_rows_inserted_by_hand_with_bad_urls_or_labels_fail_cleanly(settings, conn, fault_server):
    cursor = conn.cursor()
    cursor.executemany(  # an operator inserting by hand accepts the rows (default: pending)
        "INSERT INTO plants_data (url_source, label, review_status) VALUES (%s, %s, 'accepted')",
        [
            ("http://bad host/x.jpg", "grass"),
            ("ftp://example.org/x.jpg", "grass"),
            ("http://127.0.0.1:1/refused.jpg", "grass"),
            (f"{fault_server.url}/img/1.jpg", "Not A Label"),
            (f"{fault_server.url}/img/2.jpg", "grass"),
        ],
    )
    conn.commit()
    result = ingest.run_all(settings)
    reasons = [failure["reason"] for failure in result["failed"]]
    assert result["stored"] == 1
    assert "is not an http(s):// URL" in reasons[0]
    assert "is not an http(s):// URL" in reasons[1]
    assert "network error" in reasons[2]
    assert "label 'Not A Label' is not valid" in reasons[3]
