"""A tiny dataset version in a real S3 bucket, and the environment pointing at it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio import Minio
from plantops_infra.testing import empty_and_remove_bucket, unique_name

from plantops_ml_training.config import get_settings

TINY_CONFIG = Path(__file__).parent / "tiny.yaml"


@dataclass(frozen=True)
class Split:
    train: int
    val: int
    test: int


def put_dataset(
    client: Minio,
    bucket: str,
    version: str,
    images: Path,
    split: Split,
    labels: tuple[str, ...] = ("dandelion", "grass"),
    publish: bool = True,
) -> list[dict[str, str]]:
    """Upload fmt/ images and agg/<version>/manifest.csv the way ingestion writes them."""
    rows = []
    for label in labels:
        names = ["train"] * split.train + ["val"] * split.val + ["test"] * split.test
        for index, split_name in enumerate(names):
            body = (images / label / f"{index:08d}.jpg").read_bytes()
            row = manifest_row(label, split_name, body)
            client.put_object(bucket, row["key"], io.BytesIO(body), len(body), "image/jpeg")
            rows.append(row)
    put_manifest(client, bucket, version, rows)
    if publish:
        latest = json.dumps({"dataset_version": version}).encode()
        client.put_object(bucket, "agg/latest.json", io.BytesIO(latest), len(latest))
    return rows


def manifest_row(label: str, split: str, body: bytes) -> dict[str, str]:
    """One manifest row over these bytes, as ingestion writes it (the umbrella's
    tests/test_contracts.py checks it against orchestration's manifest contract)."""
    sha = hashlib.sha256(body).hexdigest()
    return {"key": f"fmt/{label}/{sha}.jpg", "label": label, "split": split, "sha256": sha}


def put_manifest(client: Minio, bucket: str, version: str, rows: list[dict[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["key", "label", "split", "sha256"])
    writer.writeheader()
    writer.writerows(rows)
    body = text.getvalue().encode()
    client.put_object(bucket, f"agg/{version}/manifest.csv", io.BytesIO(body), len(body))


@pytest.fixture(scope="module")
def data_bucket(s3_server) -> Iterator[str]:
    """A bucket that lives for one test module (s3_bucket lives for one test)."""
    name = unique_name("mlt-")
    s3_server.ensure_buckets(name)
    yield name
    empty_and_remove_bucket(s3_server, name)


def copy_photos(
    folder: Path, images: Path, label: str, indices: range, as_label: str | None = None
) -> None:
    """Photos `indices` of `label` into `folder/<as_label or label>/`."""
    target = folder / (as_label or label)
    target.mkdir(parents=True, exist_ok=True)
    for index in indices:
        name = f"{index:08d}.jpg"
        (target / name).write_bytes((images / label / name).read_bytes())


@pytest.fixture(scope="module")
def field_check_dir(images_dir, tmp_path_factory) -> Path:
    """A small field check: photos 190-192 of each label, which no test dataset uses."""
    folder = tmp_path_factory.mktemp("field-check")
    for label in ("dandelion", "grass"):
        copy_photos(folder, images_dir, label, range(190, 193))
    return folder


@pytest.fixture(scope="module")
def other_plants_dir(tmp_path_factory) -> Path:
    """Generated non-plant images standing in for "other plants" in the run's report."""
    from plantops_ml_training.synthetic import generated_images

    folder = tmp_path_factory.mktemp("other-plants") / "solid"
    folder.mkdir()
    for i, image in enumerate(generated_images("solid", 3)):
        image.save(folder / f"{i}.jpg")
    return folder.parent


@pytest.fixture(scope="module")
def stack_env(
    s3_server, mlflow_server, data_bucket, field_check_dir, other_plants_dir, tmp_path_factory
) -> dict[str, str]:
    """PLANTOPS_* / MLflow / AWS variables for a run against the test servers."""
    return {
        **mlflow_server.env(),
        "PLANTOPS_S3_ENDPOINT": s3_server.endpoint,
        "PLANTOPS_S3_ACCESS_KEY": s3_server.access_key,
        "PLANTOPS_S3_SECRET_KEY": s3_server.secret_key,
        "PLANTOPS_S3_SECURE": "false",
        "PLANTOPS_S3_BUCKET": data_bucket,
        "PLANTOPS_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "PLANTOPS_FIELD_CHECK_DIR": str(field_check_dir),
        "PLANTOPS_FIELD_CHECK_OTHER_DIR": str(other_plants_dir),
    }


@pytest.fixture
def use_env(stack_env, monkeypatch) -> dict[str, str]:
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield stack_env
    get_settings.cache_clear()
