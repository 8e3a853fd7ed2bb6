"""The real DAGs run by Airflow itself (`airflow dags test`) against real servers."""

from __future__ import annotations

import json

import pytest

from plantops_orchestration import db

from .conftest import dags_test, objects

pytestmark = pytest.mark.integration


def latest(s3_bucket) -> dict:
    response = s3_bucket.server.client().get_object(s3_bucket.name, "agg/latest.json")
    try:
        return json.loads(response.read())
    finally:
        response.close()
        response.release_conn()


def test_plants_ingest_stores_the_400_images_and_a_rerun_changes_nothing(
    airflow_home, env, settings, s3_bucket, fault_server
):
    bad = ["missing/1.jpg", "html/2.jpg", "truncated/3.jpg"]
    with db.connection(settings) as conn:
        db.init_db(conn)
        for path in bad:
            db.add_row(conn, f"{fault_server.url}/{path}", "grass")

    dags_test(airflow_home, env, "plants_ingest")  # succeeds despite the bad rows

    with db.connection(settings) as conn:
        assert db.status_counts(conn) == {"stored": 400, "failed": len(bad)}
        reasons = [row["last_error"] for row in db.failed_rows(conn)]
        assert "HTTP 404" in reasons[0] and "HTML" in reasons[1] and "truncated" in reasons[2]
        cursor = conn.cursor()
        cursor.execute("SELECT url_s3 FROM plants_data WHERE status = 'stored'")
        urls = {url for (url,) in cursor.fetchall()}
    stored = objects(s3_bucket)
    keys = {f"s3://{s3_bucket.name}/{key}" for key in stored}
    assert urls <= keys  # every url_s3 names an object that exists
    assert sum(key.startswith("fmt/") for key in stored) == 400
    version = latest(s3_bucket)["dataset_version"]
    assert f"agg/{version}/manifest.csv" in stored and f"agg/{version}/stats.json" in stored

    dags_test(airflow_home, env, "plants_ingest")

    assert objects(s3_bucket) == stored
    assert latest(s3_bucket)["dataset_version"] == version


def test_plants_train_trains_on_the_version_the_asset_event_names(
    fresh_airflow_home, env, settings, s3_bucket, tmp_path
):
    # A real plants_ingest run publishes the version with its Asset event (the bucket is
    # this test's own, so is the Asset URI built from it, and so are its events).
    with db.connection(settings) as conn:
        db.init_db(conn)
    dags_test(fresh_airflow_home, env, "plants_ingest")
    published = latest(s3_bucket)["dataset_version"]
    # agg/latest.json moving on afterwards must not change what the event asked for.
    from plantops_orchestration.storage import make_client, put_json

    put_json(make_client(settings), s3_bucket.name, "agg/latest.json", {"dataset_version": "x"})
    record = tmp_path / "called.txt"
    trainer = tmp_path / "fake-train"
    trainer.write_text(FAKE_TRAINER.format(record=record, reason=GATE_REASON))
    trainer.chmod(0o755)

    dags_test(fresh_airflow_home, {**env, "PLANTOPS_TRAIN_COMMAND": str(trainer)}, "plants_train")

    assert record.read_text().splitlines()[0] == f"train --dataset-version {published}"


FAKE_TRAINER = """#!/bin/sh
# Stands in for plantops-train (torch is never installed beside Airflow):
# records how it was called and which S3 bucket it was told about.
echo "$@" > "{record}"
echo "bucket=$PLANTOPS_S3_BUCKET" >> "{record}"
echo "training on $3"
echo '{{"model_version": "2", "promoted": false, "reason": "{reason}"}}'
"""
GATE_REASON = "worse than the champion on the field check: champion right and challenger wrong on 4"


def test_plants_train_runs_the_training_command_on_the_latest_dataset(
    fresh_airflow_home, env, s3_bucket, tmp_path
):
    # The real plantops-train needs torch and minutes; a small real script shows the
    # DAG resolves the version and runs the configured command with our settings.
    # No Asset event exists for this test's bucket (a cron run on a fresh Airflow
    # database): the version comes from agg/latest.json.
    from plantops_orchestration.config import get_settings
    from plantops_orchestration.storage import make_client, put_json

    put_json(
        make_client(get_settings()),
        s3_bucket.name,
        "agg/latest.json",
        {"dataset_version": "ds-abc"},
    )
    record = tmp_path / "called.txt"
    trainer = tmp_path / "fake-train"
    trainer.write_text(FAKE_TRAINER.format(record=record, reason=GATE_REASON))
    trainer.chmod(0o755)

    result = dags_test(
        fresh_airflow_home,
        {**env, "PLANTOPS_TRAIN_COMMAND": str(trainer), "PLANTOPS_TRAIN_ARGS": "--epochs 1"},
        "plants_train",
    )

    # The gate's reason (with its counts) reaches the DAG's log on a line of its own.
    log_text = result.stdout + result.stderr
    assert "gate: model version 2 NOT promoted: worse than the champion" in log_text
    assert "champion right and challenger wrong on 4" in log_text
    assert record.read_text().splitlines() == [
        "train --dataset-version ds-abc --epochs 1",
        f"bucket={s3_bucket.name}",
    ]
