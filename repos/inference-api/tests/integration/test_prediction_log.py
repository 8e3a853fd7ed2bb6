"""The prediction log against real S3 (SeaweedFS) and the API as a real uvicorn process.

Every prediction, single or batch, becomes one record in the contract's format under
predictions/date=YYYY-MM-DD/ in the data bucket; the last records are written at shutdown;
with S3 down, requests still succeed and the lost records are counted in /metrics.
(The colour test model has no novelty reference: its records carry null novelty fields,
as the contract allows for such a model.)
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jsonschema
import pytest
from apiserver import running_api
from conftest import TEST_API_KEY, image_bytes
from plantops_infra.processes import free_port
from registrykit import TcpProxy

pytestmark = pytest.mark.integration

CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "prediction-log.schema.json"
RED, GREEN, BLUE = (220, 10, 10), (10, 220, 10), (10, 10, 220)


def log_env(colour_model: Path, s3_bucket, **overrides: str) -> dict[str, str]:
    return {
        "PLANTOPS_MODEL_PATH": str(colour_model),
        "PLANTOPS_API_KEY": TEST_API_KEY,
        **s3_bucket.env(),
        "PLANTOPS_PREDICTION_LOG_FLUSH_INTERVAL_S": "0.3",
        **overrides,
    }


def logged_records(s3_bucket) -> list[tuple[str, dict]]:
    """(object key, record) of every line under predictions/."""
    client = s3_bucket.server.client()
    found = []
    for obj in client.list_objects(s3_bucket.name, prefix="predictions/", recursive=True):
        response = client.get_object(s3_bucket.name, obj.object_name)
        try:
            lines = response.read().decode().splitlines()
        finally:
            response.close()
            response.release_conn()
        found += [(obj.object_name, json.loads(line)) for line in lines]
    return found


def wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def metric(api_url: str, name: str) -> float:
    text = httpx.get(f"{api_url}/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_every_prediction_is_logged_to_s3_in_the_contract_format(colour_model, s3_bucket, tmp_path):
    photos = {"red.jpg": image_bytes(RED), "green.png": image_bytes(GREEN, fmt="PNG")}
    batch = [("b1.jpg", image_bytes(BLUE)), ("b2.jpg", image_bytes(RED, size=(50, 50)))]
    with running_api(log_env(colour_model, s3_bucket), tmp_path / "api.log") as url:
        for name, data in photos.items():
            single = httpx.post(
                f"{url}/v1/predict", files={"file": (name, data)}, headers={"X-Request-ID": name}
            )
            assert single.status_code == 200
            assert single.headers["x-request-id"] == name
        response = httpx.post(f"{url}/v1/predict/batch", files=[("files", f) for f in batch])
        assert response.status_code == 200
        batch_id = response.headers["x-request-id"]
        # A bad file is not a prediction: it is refused and not logged.
        bad = httpx.post(f"{url}/v1/predict", files={"file": ("x.jpg", b"not an image")})
        assert bad.status_code == 422

        records = wait_for(lambda: len(logged_records(s3_bucket)) >= 4 or None, "4 records")
        records = logged_records(s3_bucket)
        assert metric(url, "plantops_api_prediction_log_written_total") == 4

    schema = json.loads(CONTRACT.read_text())
    for _, record in records:
        jsonschema.validate(record, schema)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert all(key.startswith(f"predictions/date={today}/") for key, _ in records)
    assert all(key.endswith(".jsonl") for key, _ in records)
    by_sha = {record["image_sha256"]: record for _, record in records}
    sent = {**photos, **dict(batch)}
    assert set(by_sha) == {hashlib.sha256(data).hexdigest() for data in sent.values()}
    red = by_sha[hashlib.sha256(photos["red.jpg"]).hexdigest()]
    assert (red["label"], red["request_id"], red["model_version"]) == ("red", "red.jpg", "local")
    assert red["probabilities"].keys() == {"red", "green", "blue"}
    assert red["novelty_score"] is None and red["out_of_distribution"] is None
    batch_ids = {by_sha[hashlib.sha256(d).hexdigest()]["request_id"] for _, d in batch}
    assert batch_ids == {batch_id}  # the files of one request share its id
    # No image bytes anywhere in the log: only the fields of the contract.
    assert all(set(record) == set(schema["required"]) for _, record in records)


def test_the_last_records_are_written_at_shutdown(colour_model, s3_bucket, tmp_path):
    # A flush interval and size that never trigger during the test: only shutdown writes.
    env = log_env(
        colour_model,
        s3_bucket,
        PLANTOPS_PREDICTION_LOG_FLUSH_INTERVAL_S="30",
        PLANTOPS_PREDICTION_LOG_FLUSH_RECORDS="1000",
    )
    with running_api(env, tmp_path / "api.log") as url:
        for colour in (RED, GREEN, BLUE):
            assert httpx.post(f"{url}/v1/predict", files={"file": image_bytes(colour)}).is_success
        assert logged_records(s3_bucket) == []  # still in the buffer
    labels = sorted(record["label"] for _, record in logged_records(s3_bucket))
    assert labels == ["blue", "green", "red"]


def test_with_s3_down_requests_succeed_and_lost_records_are_counted(
    colour_model, s3_bucket, tmp_path
):
    proxy = TcpProxy("127.0.0.1", s3_bucket.server.port, free_port())
    proxy.start()
    env = log_env(colour_model, s3_bucket, PLANTOPS_S3_ENDPOINT=f"127.0.0.1:{proxy.port}")
    dropped = 'plantops_api_prediction_log_dropped_total{reason="s3_error"}'
    try:
        with running_api(env, tmp_path / "api.log") as url, httpx.Client(timeout=30) as http:

            def predict(colour) -> int:
                return http.post(
                    f"{url}/v1/predict", files={"file": image_bytes(colour)}
                ).status_code

            assert predict(RED) == 200
            wait_for(lambda: len(logged_records(s3_bucket)) == 1, "the first record")

            proxy.stop()  # S3 unreachable for the API (the test still reads it directly)
            statuses = [predict(colour) for colour in (GREEN, BLUE) * 10]
            assert statuses == [200] * 20
            wait_for(lambda: metric(url, dropped) == 20, "20 records counted as dropped")
            assert httpx.get(f"{url}/readyz").status_code == 200
            assert len(logged_records(s3_bucket)) == 1

            proxy.start()  # S3 back: the log writes again, without a restart
            assert predict(RED) == 200
            wait_for(lambda: len(logged_records(s3_bucket)) == 2, "a record after the outage")
            assert metric(url, dropped) == 20
            assert metric(url, "plantops_api_prediction_log_written_total") == 2
    finally:
        proxy.stop()
