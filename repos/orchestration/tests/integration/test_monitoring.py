"""plants_monitor against real S3, MLflow and MySQL, and through Airflow itself (`dags test`).

The champion is registered on the real MLflow server as training does (a run, its
`model/` folder in S3 holding reference.json, a version, the alias). The photos are
real: the 400 canonical dandelion and grass photos (half make the reference, the other
half the "ordinary" stream) and the 160 field-check other plants (the "shifted" stream).
What the model answered is SYNTHETIC: a small stand-in model (stand_in_model.py) scores
the photos, and the test writes its answers as prediction-log records in the inference
API's contract format: a model this small keeps the DAG's statistics known and the test
quick. The umbrella's tests/test_monitor_chain.py runs the same DAG on what the real API
served for a really trained champion.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jsonschema
import pytest
from plantops_infra.servers import default_images_dir

from plantops_orchestration import db, monitoring
from plantops_orchestration.config import get_settings
from plantops_orchestration.storage import get_json, make_client, put_bytes, put_json

from .conftest import dags_test
from .stand_in_model import StandInModel

pytestmark = pytest.mark.integration

COMPONENT = Path(__file__).resolve().parents[2]
VENDORED = COMPONENT / "contracts" / "vendored"
SETTLE_S = 1.0  # S3 modification times are in seconds: records wait a second to be read


def photo_sets() -> tuple[list[Path], list[Path], list[Path]]:
    images = default_images_dir(COMPONENT)
    if images is None or not images.is_dir():
        pytest.fail("the plant photos are missing: set PLANTOPS_IMAGES_DIR")
    canonical = sorted(images.glob("*/*.jpg"))
    others = sorted((images.parents[1] / "field-check" / "other-plants").glob("*/*.jpg"))
    if len(canonical) != 400 or len(others) != 160:
        pytest.fail(f"expected 400 canonical and 160 other-plant photos: {images}")
    return canonical[0::2], canonical[1::2], others


@pytest.fixture(scope="module")
def stand_in():
    reference_photos, ordinary, others = photo_sets()
    model, reference = StandInModel.fit(reference_photos)
    jsonschema.validate(
        reference, json.loads((VENDORED / "ml-training/reference.schema.json").read_text())
    )
    return model, reference, ordinary, others


def register_champion(tracking_uri: str, s3_client, name: str, reference: dict) -> str:
    """A finished run whose model/ folder holds reference.json, a version, alias champion."""
    api = f"{tracking_uri}/api/2.0/mlflow"
    with httpx.Client(timeout=30) as http:
        run = http.post(f"{api}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        source = run["artifact_uri"].rstrip("/") + "/model"
        bucket, prefix = source.removeprefix("s3://").split("/", 1)
        put_json(s3_client, bucket, f"{prefix}/reference.json", reference)
        end = {"run_id": run["run_id"], "status": "FINISHED", "end_time": int(time.time() * 1000)}
        http.post(f"{api}/runs/update", json=end).raise_for_status()
        http.post(f"{api}/registered-models/create", json={"name": name}).raise_for_status()
        body = {"name": name, "source": source, "run_id": run["run_id"]}
        version = http.post(f"{api}/model-versions/create", json=body).json()["model_version"]
        alias = {"name": name, "alias": "champion", "version": version["version"]}
        http.post(f"{api}/registered-models/alias", json=alias).raise_for_status()
    return str(version["version"])


@pytest.fixture
def monitor(env, mlflow_server, stand_in, monkeypatch):
    """Settings for a fresh bucket and database, and a champion with the stand-in reference."""
    model_name = f"plantops-monitor-test-{uuid.uuid4().hex[:8]}"
    values = {
        **env,
        "PLANTOPS_MLFLOW_TRACKING_URI": mlflow_server.url,
        "PLANTOPS_MODEL_NAME": model_name,
        "PLANTOPS_MONITOR_SETTLE_S": str(SETTLE_S),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    with db.connection(settings) as conn:
        db.init_db(conn, seed=False)
    client = make_client(settings)
    version = register_champion(mlflow_server.url, client, model_name, stand_in[1])
    yield {"env": values, "settings": settings, "client": client, "model": model_name,
           "version": version}  # fmt: skip
    get_settings.cache_clear()


def log_predictions(monitor: dict, model: StandInModel, photos: list[Path]) -> None:
    """Write the stand-in's answers as the API writes its log: JSON Lines per day."""
    schema = json.loads((VENDORED / "inference-api/prediction-log.schema.json").read_text())
    records = [model.record(p, monitor["model"], monitor["version"]) for p in photos]
    for record in records:
        jsonschema.validate(record, schema)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    key = f"predictions/date={day}/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-test.jsonl"
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    put_bytes(monitor["client"], monitor["settings"].s3_bucket, key, body, "application/x-ndjson")
    time.sleep(SETTLE_S + 0.5)  # past the settle time, so the next run reads them


def accept_feedback(settings, count: int) -> None:
    """Feedback a reviewer accepted now (after the champion was trained)."""
    with db.connection(settings) as conn:
        cursor = conn.cursor()
        for n in range(count):
            cursor.execute(
                "INSERT INTO plants_data (url_source, label, review_status, reviewed_by, "
                "review_action, reviewed_at) VALUES (%s, 'grass', 'accepted', 'reviewer', "
                "'accepted', UTC_TIMESTAMP())",
                (f"s3://bucket/feedback/{uuid.uuid4().hex}{n}.jpg",),
            )
        conn.commit()


def latest_report(monitor: dict) -> dict:
    bucket = monitor["settings"].s3_bucket
    pointer = get_json(monitor["client"], bucket, monitoring.LATEST_REPORT_KEY)
    assert pointer is not None, "no report written"
    report = get_json(monitor["client"], bucket, pointer["report_key"])
    assert report is not None
    return report


def retrain_events(airflow_env: dict) -> int:
    """Asset events of plantops-retrain-request in Airflow's own metadata database."""
    with sqlite3.connect(Path(airflow_env["AIRFLOW_HOME"]) / "airflow.db") as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = 'plantops-retrain-request'"
        ).fetchone()
    return int(count)


# ------------------------------------------------------------------ without Airflow


def test_too_few_records_are_not_enough_data_and_the_window_stays_open(monitor, stand_in):
    model, _, _, others = stand_in
    settings = monitor["settings"]
    log_predictions(monitor, model, others[:60])

    first = monitoring.run_monitor(settings)
    assert (first["status"], first["drift"], first["records"]) == ("not_enough_data", False, 60)
    assert "not enough data" in first["reason"]

    log_predictions(monitor, model, others[60:])
    second = monitoring.run_monitor(settings)
    # The 60 earlier records were kept for this run: 160 other plants, now enough.
    assert second["records"] == 160
    assert second["drift"] is True
    assert second["retrain"] is False  # no accepted feedback: report only
    assert "report only" in second["reason"]


def test_records_of_another_model_version_are_not_compared(monitor, stand_in):
    model, _, _, others = stand_in
    log_predictions(monitor, model, others)
    bucket = monitor["settings"].s3_bucket
    # Re-label the same records as version "0": served before the champion.
    for obj in monitor["client"].list_objects(bucket, prefix="predictions/", recursive=True):
        response = monitor["client"].get_object(bucket, obj.object_name)
        lines = response.read().decode().splitlines()
        response.close()
        old = "".join(
            json.dumps({**json.loads(line), "model_version": "0"}) + "\n" for line in lines
        )
        put_bytes(monitor["client"], bucket, obj.object_name, old.encode(), "application/x-ndjson")
    time.sleep(SETTLE_S + 0.5)
    report = monitoring.run_monitor(monitor["settings"])
    assert report["records"] == 0 and report["records_other_versions"] == 160
    assert report["status"] == "not_enough_data" and report["drift"] is False


# ------------------------------------------------------------------ through Airflow


def test_plants_monitor_reports_an_ordinary_stream_and_retrains_on_a_shifted_one(
    fresh_airflow_home, monitor, stand_in, mlflow_server
):
    model, _, ordinary, others = stand_in
    settings = monitor["settings"]

    # 1. The other 200 canonical photos: what the champion was trained for.
    log_predictions(monitor, model, ordinary)
    dags_test(fresh_airflow_home, monitor["env"], "plants_monitor")
    report = latest_report(monitor)
    assert (report["status"], report["drift"], report["retrain"]) == ("no_drift", False, False)
    assert report["records"] == 200
    checks = report["checks"]
    assert {name for name, check in checks.items() if check} == {
        "ood_rate", "novelty_ks", "label_psi", "confidence_ks"
    }  # fmt: skip
    assert checks["ood_rate"]["reference_false_alarm_rate"] == pytest.approx(0.02)
    assert retrain_events(fresh_airflow_home) == 0

    # The report's plot, and the MLflow run with its metrics and artifacts.
    stamp_folder = report["report_key"].rsplit("/", 1)[0]
    client, bucket = monitor["client"], settings.s3_bucket
    svg = client.get_object(bucket, f"{stamp_folder}/drift.svg").read().decode()
    assert svg.startswith("<svg") and "threshold" in svg
    with httpx.Client(timeout=30) as http:
        run = http.get(
            f"{mlflow_server.url}/api/2.0/mlflow/runs/get",
            params={"run_id": report["mlflow_run_id"]},
        ).json()["run"]
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics["records"] == 200 and metrics["drift"] == 0
    assert "novelty_ks_p_value" in metrics and "label_psi_psi" in metrics
    assert run["info"]["status"] == "FINISHED"
    artifacts = run["info"]["artifact_uri"].removeprefix("s3://").split("/", 1)
    names = {o.object_name.rsplit("/", 1)[-1] for o in client.list_objects(
        artifacts[0], prefix=artifacts[1] + "/", recursive=True)}  # fmt: skip
    assert names == {"report.json", "drift.svg"}

    # 2. Other plants, no reviewed feedback yet: drift, reported only.
    log_predictions(monitor, model, others)
    dags_test(fresh_airflow_home, monitor["env"], "plants_monitor")
    report = latest_report(monitor)
    assert report["records"] == 160  # only what was logged since the previous run
    assert (report["status"], report["drift"], report["retrain"]) == ("drift", True, False)
    assert {"ood_rate", "novelty_ks"} <= set(report["drifted_checks"])
    assert report["accepted_feedback_since_champion"] == 0
    assert retrain_events(fresh_airflow_home) == 0

    # 3. Other plants again, and two items a reviewer accepted: retraining is asked for.
    accept_feedback(settings, 2)
    log_predictions(monitor, model, others)
    result = dags_test(fresh_airflow_home, monitor["env"], "plants_monitor")
    report = latest_report(monitor)
    assert (report["drift"], report["retrain"]) == (True, True)
    assert report["accepted_feedback_since_champion"] == 2
    assert retrain_events(fresh_airflow_home) == 1, result.stdout[-2000:]
