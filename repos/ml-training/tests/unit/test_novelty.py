"""The novelty score and its threshold (novelty.py), the monitoring reference and the
generated non-plant images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plantops_ml_training.novelty import (
    KnnCosine,
    auroc,
    choose_threshold,
    fit_novelty,
    load_params,
    monitoring_reference,
    write_reference,
)
from plantops_ml_training.synthetic import EVAL_FAMILIES, generated_images

pytestmark = pytest.mark.unit

SCHEMA = Path(__file__).parents[2] / "contracts" / "reference.schema.json"


def clustered(rng, n: int, centre: np.ndarray, views: int = 3) -> list[np.ndarray]:
    """`n` photos near `centre`, each with `views` slightly different views."""
    photos = centre + 0.3 * rng.standard_normal((n, centre.size))
    return [p + 0.05 * rng.standard_normal((views, centre.size)) for p in photos]


def test_threshold_lets_at_most_the_target_share_of_photos_above_it():
    scores = np.arange(100, dtype=float)
    threshold = choose_threshold(scores, 0.02)
    assert np.sum(scores > threshold) == 2
    assert choose_threshold(scores, 0.0) == 99.0  # nothing above the largest


def test_a_photo_unlike_the_training_photos_scores_higher_than_a_like_one():
    rng = np.random.default_rng(0)
    a, b, other = (5 * rng.standard_normal(16) for _ in range(3))  # two labels, a third kind
    train = clustered(rng, 20, a) + clustered(rng, 20, b)
    val = np.stack([v[0] for v in clustered(rng, 5, a) + clustered(rng, 5, b)])
    reference = fit_novelty(train, val)
    near = np.stack([v[0] for v in clustered(rng, 10, a) + clustered(rng, 10, b)])
    far = np.stack([v[0] for v in clustered(rng, 20, other)])
    assert auroc(reference.scores(far), reference.scores(near)) > 0.95
    assert reference.flags(far).mean() > reference.flags(near).mean()


def test_training_photos_are_scored_without_their_own_views():
    """Scored against its own views, every training photo would look familiar and the
    threshold would be far too low: leave-one-photo-out keeps it honest."""
    rng = np.random.default_rng(1)
    train = clustered(rng, 30, np.zeros(8), views=4)
    reference = fit_novelty(train, np.stack([v[0] for v in clustered(rng, 10, np.zeros(8))]))
    own_view_scores = KnnCosine.fit(np.concatenate(train), k=1).scores(
        np.stack([v[0] for v in train])
    )
    assert own_view_scores.max() < 1e-2  # each one finds itself
    assert reference.threshold > 10 * own_view_scores.max()


def test_validation_false_alarm_rate_is_measured_on_validation_photos_only():
    rng = np.random.default_rng(2)
    train = clustered(rng, 50, np.ones(8))
    val = np.stack([v[0] for v in clustered(rng, 20, np.ones(8))])
    reference = fit_novelty(train, val, target=0.1)
    assert reference.false_alarm_rate == pytest.approx(
        np.mean(reference.scores(val) > reference.threshold)
    )
    assert reference.threshold_photos == 70
    np.testing.assert_allclose(reference.validation_scores, reference.scores(val), atol=1e-6)


def test_parameters_round_trip_through_the_file(tmp_path):
    rng = np.random.default_rng(3)
    reference = fit_novelty(clustered(rng, 10, np.ones(4)), rng.standard_normal((3, 4)))
    reference.write_params(tmp_path)
    loaded = load_params(tmp_path / "novelty.npz")
    query = rng.standard_normal((5, 4))
    np.testing.assert_allclose(loaded.scores(query), reference.scores(query), atol=1e-6)
    block = reference.spec_block()
    assert block["method"] == "knn_cosine"
    assert block["params_file"] == "novelty.npz"
    assert block["threshold"] == reference.threshold


JSON_TYPES = {"array": list, "object": dict, "number": (int, float), "string": str}


def check_against_schema(data: dict, schema: dict) -> None:
    """The contract's required fields, their JSON types and the format version (jsonschema
    is not a dependency here; the vendored copies are validated by their readers)."""
    assert set(schema["required"]) <= set(data)
    for name, rule in schema["properties"].items():
        if "type" in rule:
            assert isinstance(data[name], JSON_TYPES[rule["type"]]), name
        if "const" in rule:
            assert data[name] == rule["const"], name
        item_type = rule.get("items", {}).get("type")
        if item_type:
            assert all(isinstance(x, JSON_TYPES[item_type]) for x in data[name]), name


def test_reference_json_follows_its_contract(tmp_path):
    rng = np.random.default_rng(4)
    val = rng.standard_normal((6, 4))
    reference = fit_novelty(clustered(rng, 10, np.ones(4)), val)
    probs = np.array([[0.9, 0.1]] * 4 + [[0.2, 0.8]] * 2)
    path = write_reference(monitoring_reference(reference, ["dandelion", "grass"], probs), tmp_path)
    data = json.loads(path.read_text())
    check_against_schema(data, json.loads(SCHEMA.read_text()))
    assert data["label_mix"] == pytest.approx({"dandelion": 4 / 6, "grass": 2 / 6})
    assert data["confidences"] == pytest.approx([0.9] * 4 + [0.8] * 2)
    assert len(data["novelty_scores"]) == 6


@pytest.mark.parametrize("family", EVAL_FAMILIES)
def test_generated_images_are_the_same_on_every_call(family):
    first, again = generated_images(family, 3), generated_images(family, 3)
    assert [np.asarray(a).tobytes() for a in first] == [np.asarray(b).tobytes() for b in again]
    assert len({np.asarray(a).tobytes() for a in first}) == 3  # and differ from each other
