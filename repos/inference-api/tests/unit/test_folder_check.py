"""The figures of `check-folder`, on answers whose right figures are known by hand."""

from __future__ import annotations

import pytest

from plantops_inference_api.folder_check import Answer, expected_calibration_error, summarise

pytestmark = pytest.mark.unit


def test_confident_and_always_right_is_off_by_its_missing_confidence():
    answers = [Answer("a", "a", 0.9)] * 10
    assert expected_calibration_error(answers) == pytest.approx(0.1)


def test_calibration_error_weighs_each_bin_by_its_size():
    # Bin 0.9-1.0: 4 answers at 0.95, 3 right (0.75): gap 0.2. Bin 0.5-0.6: 1 at 0.55, wrong.
    answers = [Answer("a", "a", 0.95)] * 3 + [Answer("a", "b", 0.95), Answer("b", "a", 0.55)]
    assert expected_calibration_error(answers) == pytest.approx((4 * 0.2 + 1 * 0.55) / 5)


def test_balanced_accuracy_is_the_mean_recall_whatever_the_class_sizes():
    answers = [Answer("dandelion", "dandelion", 0.9)] * 9 + [Answer("dandelion", "grass", 0.6)]
    answers += [Answer("grass", "grass", 0.8), Answer("grass", "dandelion", 0.7)]
    report = summarise(answers, ["dandelion", "grass", "clover"])
    assert report["recall"] == {"dandelion": 0.9, "grass": 0.5}
    assert report["balanced_accuracy"] == pytest.approx(0.7)
    assert report["images_per_label"] == {"dandelion": 10, "grass": 2}
    assert report["confusion"]["grass"] == {"dandelion": 1, "grass": 1, "clover": 0}
