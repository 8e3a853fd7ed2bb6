"""`plantops-train bench` as a user runs it: the installed command on a small folder of
real photos, a field check and "other plants", one JSON line (no servers needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plantops_ml_training.synthetic import generated_images

pytestmark = pytest.mark.integration

BENCH = Path(sys.executable).with_name("plantops-train")
# The default's method, small: 2 views of each photo at 128 px, 5 head epochs.
RECIPE = """\
backbone: efficientnet-lite0
method: frozen_body
image_size: 128
feature_views: 2
head_epochs: 5
batch_size: 8
tta_flip: false
seed: 0
calibrate: true
accuracy_floor: 0.0
label_review: null
novelty_bank_views: 2
"""


@pytest.fixture(scope="module")
def bench_folders(images_dir, tmp_path_factory) -> dict[str, Path]:
    """20 photos of each label to cross-validate; photos 190-192 of each label as the
    field check (never in the folder); generated solid-colour images as other plants."""
    root = tmp_path_factory.mktemp("bench")
    for folder, indices in (("images", range(20)), ("field", range(190, 193))):
        for label in ("dandelion", "grass"):
            (root / folder / label).mkdir(parents=True)
            for name in (f"{i:08d}.jpg" for i in indices):
                (root / folder / label / name).symlink_to(images_dir / label / name)
    (root / "other" / "solid").mkdir(parents=True)
    for i, image in enumerate(generated_images("solid", 6)):
        image.save(root / "other" / "solid" / f"{i}.jpg")
    (root / "recipe.yaml").write_text(RECIPE)
    return {name: root / name for name in ("images", "field", "other", "recipe.yaml")}


def bench(folders: dict[str, Path], other: Path | str) -> dict:
    env = {
        **os.environ,
        "PLANTOPS_FIELD_CHECK_DIR": str(folders["field"]),
        "PLANTOPS_FIELD_CHECK_OTHER_DIR": str(other),
        "OMP_NUM_THREADS": "1",
    }
    args = [BENCH, "bench", "--images", folders["images"], "--folds", "2"]
    return json_line_of([*args, "--config", folders["recipe.yaml"]], env)


def json_line_of(args: list, env: dict[str, str]) -> dict:
    """Run the installed command; it must succeed, and its last line is its JSON result."""
    result = subprocess.run(
        [str(a) for a in args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bench_reports_each_folds_novelty_threshold_on_the_field_check(bench_folders):
    result = bench(bench_folders, bench_folders["other"])
    assert result["folds"] == 2
    novelty = result["novelty"]
    for name in ("val_false_alarm", "field_flagged", "other_flagged", "field_auroc"):
        mean, std = novelty[name]
        assert 0.0 <= mean <= 1.0 and std >= 0.0, (name, novelty)
    # Solid colours are nothing like a photo: each fold's threshold flags them, and
    # they all score above every field-check photo.
    assert novelty["other_flagged"] == [1.0, 0.0], novelty
    assert novelty["field_auroc"] == [1.0, 0.0], novelty
    assert result["field"]["balanced_accuracy"][0] > 0.5  # the classifier beside it


def test_without_other_plants_their_figures_are_skipped_not_invented(bench_folders):
    novelty = bench(bench_folders, "")["novelty"]
    assert novelty["other_flagged"] == novelty["field_auroc"] == "skipped"
    assert 0.0 <= novelty["field_flagged"][0] <= 1.0


def bench_novelty(folders: dict[str, Path], cache: Path, *extra: str) -> dict:
    args = [BENCH, "bench-novelty", "--images", folders["images"], "--field", folders["field"]]
    args += ["--other", folders["other"], "--folds", "2", "--views", "2", "--cache-dir", cache]
    return json_line_of([*args, *extra], {**os.environ, "OMP_NUM_THREADS": "1"})


def test_bench_novelty_measures_the_multi_crop_method_only_when_asked(bench_folders, tmp_path):
    multi_crop = "knn1_cosine_views_5crops_mean"
    one_crop = bench_novelty(bench_folders, tmp_path)["methods"]
    assert multi_crop not in one_crop and "knn5_cosine_views" in one_crop
    # Five crops are other embeddings: a second cache file, not the one-crop one reused.
    five_crops = bench_novelty(bench_folders, tmp_path, "--query-crops", "5")["methods"]
    assert len(list(tmp_path.glob("embeddings-*.npz"))) == 2
    mean, std = five_crops[multi_crop]["other_flagged"]
    # Solid colours: every crop of them is far from every plant photo.
    assert mean == 1.0 and std == 0.0, five_crops[multi_crop]
    assert five_crops["knn5_cosine_views"] == one_crop["knn5_cosine_views"]


def test_bench_novelty_measures_outlier_exposure_on_recoloured_photos(bench_folders, tmp_path):
    result = bench_novelty(bench_folders, tmp_path)
    # Of the 40 photos, the dandelions with their flower heads in view are recoloured;
    # photos without yellow are not, or outlier exposure would learn them as novel.
    assert 5 <= result["recoloured_training_photos"] <= 30, result["recoloured_training_photos"]
    for name in ("outlier_exposure_recoloured", "knn1_views+outlier_exposure_recoloured"):
        figures = result["methods"][name]
        assert 0.0 <= figures["lolo_auroc"][0] <= 1.0, (name, figures)
        # Trained to call recoloured photos novel, it still flags few real ones.
        assert figures["field_flagged"][0] <= 0.5, (name, figures)
        # The other plants are one folder here (solid colours): its share is the whole.
        assert figures["other_flagged_solid"] == figures["other_flagged"], (name, figures)
