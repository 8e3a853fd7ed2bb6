"""The frozen_body method: the body keeps its ImageNet weights, only the head learns."""

import pytest
import torch

from plantops_ml_training.config import load_config
from plantops_ml_training.model import build_backbone
from plantops_ml_training.preprocessing import load_rgb
from plantops_ml_training.train import Item, image_views, serving_spec, train

pytestmark = pytest.mark.unit

LABELS = ["dandelion", "grass", "other"]  # three labels: nothing assumes two


def tiny_items(images_dir) -> list[Item]:
    # "other" is a copy of dandelion photos: enough for the mechanics, not for accuracy.
    return [
        Item(images_dir / folder / f"{i:08d}.jpg", label, i >= 6)
        for label, folder in zip(LABELS, ["dandelion", "grass", "dandelion"], strict=True)
        for i in range(8)
    ]


def test_only_the_head_changes_and_the_result_classifies_every_label(images_dir):
    config = load_config(overrides={"image_size": 64, "head_epochs": 2, "feature_views": 3})
    pretrained = build_backbone(config.backbone, 64).body.state_dict()
    trained = train(tiny_items(images_dir), LABELS, config)
    body = trained.learner.model.body.state_dict()
    assert all(torch.equal(pretrained[name], body[name]) for name in pretrained)
    probs = trained.predict_probs([images_dir / "grass" / "00000100.jpg"])
    assert probs.shape == (1, 3)
    assert probs.sum() == pytest.approx(1, abs=1e-5)


def test_views_are_the_serving_crop_its_mirror_then_random_crops(images_dir):
    config = load_config(overrides={"image_size": 64, "feature_views": 4})
    spec = serving_spec(config, build_backbone(config.backbone, 64, pretrained=False), LABELS)
    image = load_rgb(images_dir / "dandelion" / "00000001.jpg")
    views = image_views(image, spec, config)
    assert len(views) == 4
    assert all(v.size == (64, 64) for v in views)
    assert list(views[1].getdata()) == list(views[0].transpose(0).getdata())  # mirror
    assert len(image_views(image, spec, None)) == 1  # validation: the serving crop only
    no_aug = load_config(overrides={"image_size": 64, "aug_enabled": False})
    assert len(image_views(image, spec, no_aug)) == 1


def test_same_data_and_seed_give_the_same_model(images_dir):
    config = load_config(overrides={"image_size": 64, "head_epochs": 2, "feature_views": 3})
    photos = [images_dir / "grass" / "00000100.jpg", images_dir / "dandelion" / "00000100.jpg"]
    first = train(tiny_items(images_dir), LABELS, config).predict_probs(photos)
    second = train(tiny_items(images_dir), LABELS, config).predict_probs(photos)
    assert abs(first - second).max() < 1e-6


def test_a_shared_feature_cache_gives_the_same_model_as_none(images_dir):
    """The benchmark reuses each photo's body features across folds: that must change
    nothing but the time (a photo's random views depend only on the photo and seed)."""
    config = load_config(overrides={"image_size": 64, "head_epochs": 2, "feature_views": 3})
    photos = [images_dir / "grass" / "00000100.jpg", images_dir / "dandelion" / "00000100.jpg"]
    plain = train(tiny_items(images_dir), LABELS, config).predict_probs(photos)
    cache: dict = {}
    train(tiny_items(images_dir)[::-1], LABELS, config, None, cache)  # other order fills it
    assert len(cache) == len({(i.path, i.is_valid) for i in tiny_items(images_dir)})
    cached = train(tiny_items(images_dir), LABELS, config, None, cache).predict_probs(photos)
    assert abs(plain - cached).max() < 1e-6


def test_mosaic_views_replace_the_last_random_crops_with_four_smaller_crops(images_dir):
    """A mosaic is the zoomed-out view: a 2x2 grid of independent half-size crops."""
    spec_config = load_config(overrides={"image_size": 64})
    spec = serving_spec(
        spec_config, build_backbone("efficientnet-lite0", 64, pretrained=False), LABELS
    )
    image = load_rgb(images_dir / "dandelion" / "00000001.jpg")
    crops_only = image_views(
        image, spec, load_config(overrides={"image_size": 64, "feature_views": 4}), "seed"
    )
    with_mosaics = image_views(
        image,
        spec,
        load_config(overrides={"image_size": 64, "feature_views": 6, "aug_mosaic_views": 2}),
        "seed",
    )
    assert len(with_mosaics) == 6
    # The serving crop, its mirror and the random crops are those a recipe without
    # mosaics draws: adding mosaics changes nothing else.
    assert [v.tobytes() for v in with_mosaics[:4]] == [v.tobytes() for v in crops_only]
    first, second = with_mosaics[4:]
    assert first.size == second.size == (64, 64)
    assert first.tobytes() != second.tobytes()
    quadrants = [first.crop((x, y, x + 32, y + 32)).tobytes() for x in (0, 32) for y in (0, 32)]
    assert len(set(quadrants)) == 4  # four different crops, not one tile repeated
