"""Behaviour of a trained model: accuracy floor, invariances, ONNX agreement."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from plantops_ml_training.export import export_onnx, max_logit_difference, onnx_probs
from plantops_ml_training.preprocessing import load_rgb

pytestmark = pytest.mark.model


def predicted_labels(trained, images) -> list[str]:
    probs = trained.predict_probs(images)
    return [trained.spec.labels[i] for i in probs.argmax(axis=1)]


def agreement(a: list[str], b: list[str]) -> float:
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)]))


def test_minimum_accuracy_on_a_fixed_unseen_set(trained, held_out):
    assert agreement(predicted_labels(trained, held_out.paths), held_out.labels) >= 0.85


def test_a_mirrored_photo_keeps_its_label(trained, held_out):
    originals = [load_rgb(p) for p in held_out.paths]
    mirrored = [ImageOps.mirror(image) for image in originals]
    assert (
        agreement(predicted_labels(trained, originals), predicted_labels(trained, mirrored)) >= 0.9
    )


def test_a_slightly_cropped_photo_keeps_its_label(trained, held_out):
    def crop_border(image: Image.Image) -> Image.Image:
        w, h = image.size
        dx, dy = w // 20, h // 20  # 5 % off every side
        return image.crop((dx, dy, w - dx, h - dy))

    originals = [load_rgb(p) for p in held_out.paths]
    cropped = [crop_border(image) for image in originals]
    assert (
        agreement(predicted_labels(trained, originals), predicted_labels(trained, cropped)) >= 0.9
    )


def test_onnx_and_torch_agree(trained, held_out, tmp_path):
    serving = trained.serving_model()
    path = export_onnx(serving, trained.spec, tmp_path / "model.onnx")
    assert max_logit_difference(serving, path, trained.spec, held_out.paths) < 1e-4
    torch_labels = trained.predict_probs(held_out.paths).argmax(axis=1)
    onnx_labels = onnx_probs(path, trained.spec, held_out.paths).argmax(axis=1)
    assert (torch_labels == onnx_labels).all()
