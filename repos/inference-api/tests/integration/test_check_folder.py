"""`plantops-inference-api check-folder` against a real uvicorn serving the colour model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from apiserver import running_api
from conftest import image_bytes
from modelkit import write_model

pytestmark = pytest.mark.integration

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)
CLI = [sys.executable, "-m", "plantops_inference_api.cli"]


def write_photos(folder, label, colours):
    (folder / label).mkdir(parents=True)
    for index, colour in enumerate(colours):
        (folder / label / f"{index}.jpg").write_bytes(image_bytes(colour))


def test_the_served_model_is_scored_per_label_and_unknown_folders_are_set_apart(
    colour_model, tmp_path
):
    photos = tmp_path / "photos"
    write_photos(photos, "red", [RED, RED, RED])
    write_photos(photos, "green", [GREEN, GREEN, RED])  # one green photo the model calls red
    write_photos(photos, "blue", [BLUE])
    write_photos(photos, "purple", [RED, BLUE])  # not a label the model knows
    with running_api({"PLANTOPS_MODEL_PATH": str(colour_model)}, tmp_path / "api.log") as url:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "plantops_inference_api.cli",
                "check-folder",
                str(photos),
                "--api-url",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    report = json.loads(done.stdout)
    assert report["recall"] == {"blue": 1.0, "green": 0.6667, "red": 1.0}
    assert report["balanced_accuracy"] == pytest.approx((1 + 2 / 3 + 1) / 3, abs=1e-4)
    assert report["confusion"]["green"]["red"] == 1
    assert report["not_scored"] == {"purple": 2}
    assert report["images"] == 7
    # A model without a novelty reference: no out-of-distribution figure, for any folder.
    assert set(report["out_of_distribution"].values()) == {None}


def test_each_folder_gets_its_share_of_out_of_distribution_photos(tmp_path):
    model = write_model(tmp_path / "model", novelty=True)
    photos = tmp_path / "photos"
    write_photos(photos, "red", [RED, RED])
    write_photos(photos, "grey-things", [(128, 128, 128), (120, 120, 120), RED, BLUE])
    with running_api({"PLANTOPS_MODEL_PATH": str(model)}, tmp_path / "api.log") as url:
        done = subprocess.run(
            [*CLI, "check-folder", str(photos), "--api-url", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    report = json.loads(done.stdout)
    assert report["out_of_distribution"] == {"grey-things": 0.5, "red": 0.0}
    assert report["not_scored"] == {"grey-things": 4}
    assert report["images"] == 2  # only photos of a served label are scored


def test_a_missing_folder_is_a_clear_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "plantops_inference_api.cli", "check-folder", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "is not a folder" in done.stderr
