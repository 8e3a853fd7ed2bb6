"""Novelty of a trained model, as exported: generated non-plant images are flagged,
photos like the training ones are not (small sets; the full figures are
`make bench-novelty`'s, docs/BENCHMARKS.md).

Noise images are not asserted: they are the family the score flags least (54 % at full
scale), and at this test scale (128 px, 120 training photos) their median score was
below the 90th percentile of unseen photos' scores, so no honest assertion holds.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from plantops_ml_training.export import export_onnx, max_output_differences, onnx_outputs
from plantops_ml_training.novelty import EMBEDDING_NAME, fit_novelty
from plantops_ml_training.synthetic import generated_images

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def exported(trained, training_items, training_views, tmp_path_factory):
    """The model as the pipeline exports it, and its novelty reference."""
    spec = replace(trained.spec, embedding_name=EMBEDDING_NAME)
    serving = trained.serving_model_with_embedding()
    path = export_onnx(serving, spec, tmp_path_factory.mktemp("onnx") / "model.onnx")
    views = [
        training_views[(str(i.path), True)].numpy()[:2]  # the recipe's novelty_bank_views
        for i in training_items
        if not i.is_valid
    ]
    _, val = onnx_outputs(path, spec, [i.path for i in training_items if i.is_valid])
    return serving, path, spec, fit_novelty(views, val)


def scores_of(exported, images) -> np.ndarray:
    _, path, spec, reference = exported
    _, embeddings = onnx_outputs(path, spec, images)
    return reference.scores(embeddings)


def test_onnx_embedding_and_logits_match_torch(exported, held_out):
    serving, path, spec, _ = exported
    differences = max_output_differences(serving, path, spec, held_out.paths[:16])
    assert differences["logits"] < 1e-4
    assert differences[EMBEDDING_NAME] < 1e-3  # features up to ~10: a relative 1e-4


@pytest.mark.parametrize("family", ["text", "screenshot", "solid"])
def test_generated_non_plant_images_are_flagged(exported, family):
    reference = exported[3]
    flagged = scores_of(exported, generated_images(family, 10, seed=7)) > reference.threshold
    assert flagged.mean() >= 0.8, f"{family}: {flagged.mean():.0%} flagged"


def test_unseen_photos_of_the_training_labels_are_rarely_flagged(exported, held_out):
    reference = exported[3]
    flagged = scores_of(exported, held_out.paths) > reference.threshold
    assert flagged.mean() <= 0.15, f"{flagged.mean():.0%} of 60 unseen photos flagged"
