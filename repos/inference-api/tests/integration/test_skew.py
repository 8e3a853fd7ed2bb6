"""No train/serve skew: the API returns the probabilities training's evaluation logged.

Training's side is played by a reference implementation written here from the text
of docs/architecture.md (not the API's code), on real plant photos, with a model whose
every output depends on every input pixel. `check-skew` (the same check the lead runs
on a really trained champion) must find them equal within 1e-4.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from apiserver import running_api
from modelkit import write_model
from PIL import Image, ImageOps
from plantops_infra.servers import default_images_dir
from registrykit import api_env, register_version, settings_from

from plantops_inference_api.skew import check_skew

pytestmark = pytest.mark.integration

LABELS = ("dandelion", "grass", "clover")
FILTERS = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}


def reference_probabilities(data: bytes, spec: dict, session: ort.InferenceSession, resample=None):
    """The contract, step by step, as training applies it."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    w, h = image.size
    side = spec["resize_shorter_side"]
    size = (side, round(h * side / w)) if w <= h else (round(w * side / h), side)
    image = image.resize(size, FILTERS[resample or spec["resample"]])
    crop = spec["crop_size"]
    left, top = (size[0] - crop) // 2, (size[1] - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    x = np.asarray(image, dtype=np.float32) / 255.0
    x = (x - np.array(spec["mean"], np.float32)) / np.array(spec["std"], np.float32)
    (logits,) = session.run(["logits"], {"image": x.transpose(2, 0, 1)[None]})
    z = logits[0].astype(np.float64)
    return np.exp(z - z.max()) / np.exp(z - z.max()).sum()


@pytest.fixture
def photos() -> dict[str, bytes]:
    images = default_images_dir(Path(__file__).resolve())
    assert images is not None, "the shared plant photos are missing"
    picks = [
        images / label / f"{i:08d}.jpg" for label in ("dandelion", "grass") for i in (1, 7, 42)
    ]
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in picks}


def test_api_probabilities_equal_trainings_within_1e4(
    mlflow_server, s3_bucket, photos, tmp_path, monkeypatch
):
    for key, value in mlflow_server.env().items():
        monkeypatch.setenv(key, value)
    model_dir = write_model(
        tmp_path / "model", labels=LABELS, kind="spatial", resize_shorter_side=72, crop_size=64,
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    )  # fmt: skip
    spec = json.loads((model_dir / "preprocessing.json").read_text())
    session = ort.InferenceSession(str(model_dir / "model.onnx"))
    client = s3_bucket.server.client()
    rows, sensitivity = [], 0.0
    for name, data in photos.items():
        sha = hashlib.sha256(data).hexdigest()
        key = f"fmt/{name.split('/')[0]}/{sha}.jpg"
        client.put_object(s3_bucket.name, key, io.BytesIO(data), len(data))
        probs = reference_probabilities(data, spec, session)
        other = reference_probabilities(data, spec, session, resample="nearest")
        sensitivity = max(sensitivity, float(np.abs(probs - other).max()))
        row = {"key": key, "sha256": sha, "label": name.split("/")[0]}
        rows.append(
            row | {f"prob_{label}": repr(float(p)) for label, p in zip(LABELS, probs, strict=True)}
        )
    # The model notices a resampling change by far more than the tolerance.
    assert sensitivity > 1e-2
    with (model_dir / "test_predictions.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    name = f"plantops-skew-{uuid.uuid4().hex[:8]}"
    version = register_version(mlflow_server.url, name, model_dir)
    env = api_env(mlflow_server, name)
    with running_api(env, tmp_path / "api.log") as url:
        report = check_skew(settings_from(env), url, s3_bucket.name)
    assert report.version == version
    assert report.images == len(photos)
    assert report.max_abs_diff <= 1e-4, report
    assert report.ok(1e-4)
