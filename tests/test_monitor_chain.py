"""The monitoring chain with every link real (issue 17, point 7).

ml-training trains a real model (frozen ImageNet EfficientNet-Lite0 body, a small head)
on part of the 400 photos and registers it on a real MLflow server; the inference API
serves that champion over HTTP and writes its prediction log to a real S3 server; and
`make -C repos/orchestration monitor` runs plants_monitor through Airflow (`airflow dags
test`) on that log, as a user does after `make demo`. Nothing is synthetic: the photos
are sent by `repos/infra/load/post_photos.py`, the sender the monitoring figures of
repos/orchestration/README.md were measured with.

- an ordinary stream (200 of the 400 photos the model never saw) reports no drift;
- then a stream of the 160 field-check other plants reports drift.

Each component is run by its own virtualenv's command (`make setup` made them), never
imported: they talk over HTTP, S3 and the MLflow registry, as in production. The model
trains on 80 photos so that the test takes about two minutes; its figures are not the
champion's (docs/BENCHMARKS.md has those).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from plantops_infra.processes import ManagedProcess, free_port, http_ok, wait_until
from plantops_infra.servers import default_images_dir

from conftest import ROOT

pytestmark = pytest.mark.integration

RECIPE = Path(__file__).with_name("monitor_chain_recipe.yaml")
TRAIN = ROOT / "repos/ml-training/.venv/bin/plantops-train"
API = ROOT / "repos/inference-api/.venv/bin/plantops-inference-api"
SENDER = ROOT / "repos/infra/load/post_photos.py"
MAKE_ORCHESTRATION = ["make", "-s", "--no-print-directory", "-C", "repos/orchestration"]
LABELS = ("dandelion", "grass")
# Photo indices of each label: trained on, validation (the monitor's reference), test;
# the ordinary stream is photos 100-199 of each label, which no split holds.
SPLITS = {"train": range(0, 40), "val": range(40, 60), "test": range(60, 70)}
ORDINARY = range(100, 200)


def photos() -> tuple[Path, Path]:
    images = default_images_dir(ROOT / "repos/infra")
    if images is None or not images.is_dir():
        pytest.fail("the plant photos are missing: set PLANTOPS_IMAGES_DIR")
    others = images.parents[1] / "field-check" / "other-plants"
    if len(list(others.glob("*/*.jpg"))) != 160:
        pytest.fail(f"expected the 160 field-check other plants in {others}")
    return images, others


def put_dataset(client, bucket: str, images: Path, version: str) -> None:
    """fmt/ photos and agg/<version>/manifest.csv + agg/latest.json, as ingestion writes
    them (the umbrella's test_contracts.py checks the manifest contract itself)."""
    rows = []
    for label in LABELS:
        for split, indices in SPLITS.items():
            for index in indices:
                body = (images / label / f"{index:08d}.jpg").read_bytes()
                sha = hashlib.sha256(body).hexdigest()
                key = f"fmt/{label}/{sha}.jpg"
                client.put_object(bucket, key, io.BytesIO(body), len(body), "image/jpeg")
                rows.append({"key": key, "label": label, "split": split, "sha256": sha})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["key", "label", "split", "sha256"])
    writer.writeheader()
    writer.writerows(rows)
    for key, body in (
        (f"agg/{version}/manifest.csv", text.getvalue().encode()),
        ("agg/latest.json", json.dumps({"dataset_version": version}).encode()),
    ):
        client.put_object(bucket, key, io.BytesIO(body), len(body))


@pytest.fixture
def chain_env(s3_bucket, mlflow_server, mysql_database, tmp_path) -> dict[str, str]:
    """One environment for all three components: their PLANTOPS_* settings, a fresh data
    bucket and database, an Airflow home and an API port (the MLflow server is this
    session's own: the registered model is the only one of its name)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PLANTOPS_", "AIRFLOW"))}
    return {
        **base,
        **mlflow_server.env(),
        **mysql_database.env(),
        **s3_bucket.env(),
        # ml-training registers under its one name; the API and the monitor read it.
        "PLANTOPS_MODEL_NAME": "plantops-classifier",
        "PLANTOPS_CACHE_DIR": str(tmp_path / "cache"),
        "PLANTOPS_FIELD_CHECK_DIR": "",  # recorded as skipped: not this test's subject
        "PLANTOPS_FIELD_CHECK_OTHER_DIR": "",
        "PLANTOPS_API_PORT": str(free_port()),
        "PLANTOPS_PREDICTION_LOG_FLUSH_INTERVAL_S": "1",
        "PLANTOPS_MONITOR_SETTLE_S": "1",
        "OMP_NUM_THREADS": "1",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
    }


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def last_json_line(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """The inference API serving the registered champion, stopped afterwards."""
    url = f"http://127.0.0.1:{env['PLANTOPS_API_PORT']}"
    # Not infra's `spawn`, which adds this process's environment back: `env` leaves out
    # the caller's PLANTOPS_* settings on purpose.
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [API, "serve", "--host", "127.0.0.1"], env=env, stderr=log, start_new_session=True
        )
    server = ManagedProcess("the inference API", process, log_path)
    try:
        wait_until(lambda: http_ok(f"{url}/readyz"), "the inference API", 60, server)
        yield url
    finally:
        server.stop()


def send(api: str, paths: list[Path], env: dict[str, str]) -> dict:
    output = run([sys.executable, str(SENDER), "--api", api, *map(str, paths)], env)
    counts = last_json_line(output)
    assert counts["ok"] == counts["sent"] == len(paths), counts
    return counts


def logged_records(client, bucket: str) -> list[dict]:
    records = []
    for obj in client.list_objects(bucket, prefix="predictions/", recursive=True):
        response = client.get_object(bucket, obj.object_name)
        try:
            records += [json.loads(line) for line in response.read().decode().splitlines()]
        finally:
            response.close()
    return records


def wait_for_records(client, bucket: str, count: int) -> list[dict]:
    """The log's records once `count` are in S3 (the API flushes every second here)."""
    deadline = time.monotonic() + 30
    while len(records := logged_records(client, bucket)) < count:
        assert time.monotonic() < deadline, f"{len(records)} of {count} records logged in 30 s"
        time.sleep(0.5)
    time.sleep(2)  # past the monitor's settle time (1 s), so its next run reads them
    return records


def monitor(env: dict[str, str]) -> dict:
    """`make monitor` as a user runs it: plants_monitor through Airflow, one JSON line."""
    airflow_home = f"AIRFLOW_HOME={env['AIRFLOW_HOME']}"
    return last_json_line(run([*MAKE_ORCHESTRATION, "monitor", airflow_home], env))


def test_the_monitor_reads_what_the_real_api_served(chain_env, s3_bucket, tmp_path):
    images, others = photos()
    client, bucket = s3_bucket.server.client(), s3_bucket.name
    put_dataset(client, bucket, images, "ds-chain")
    # The table whose accepted feedback retraining needs.
    run([*MAKE_ORCHESTRATION, "init-db"], chain_env)
    trained = last_json_line(run([str(TRAIN), "train", "--config", str(RECIPE)], chain_env))
    assert trained["promoted"] is True, trained

    with serving(chain_env, tmp_path / "api.log") as api:
        ordinary = [images / label / f"{i:08d}.jpg" for label in LABELS for i in ORDINARY]
        sent = send(api, ordinary, chain_env)
        records = wait_for_records(client, bucket, len(ordinary))
        # One record per prediction, by the champion that answered it.
        assert len(records) == len(ordinary)
        assert {r["model_version"] for r in records} == {str(trained["model_version"])}
        assert sum(r["out_of_distribution"] for r in records) == sent["out_of_distribution"]

        report = monitor(chain_env)
        print("ordinary stream:", json.dumps(report))  # the figures, with pytest -s
        assert (report["status"], report["records"]) == ("no_drift", len(ordinary)), report
        assert report["drift"] is False and report["drifted_checks"] == [], report

        shifted = sorted(others.glob("*/*.jpg"))
        send(api, shifted, chain_env)
        wait_for_records(client, bucket, len(ordinary) + len(shifted))
        report = monitor(chain_env)
        print("other plants:", json.dumps(report))
        # Only the window since the previous run: the 160 other plants.
        assert (report["status"], report["records"]) == ("drift", len(shifted)), report
        assert report["drift"] is True and report["drifted_checks"], report
        assert report["retrain"] is False  # no reviewed feedback waits: it only reports
