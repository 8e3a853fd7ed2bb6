"""The training recipe: file, overrides and validation."""

from pathlib import Path

import pytest

from plantops_ml_training.config import ConfigError, Settings, load_config

pytestmark = pytest.mark.unit


def test_default_recipe_is_lite0_at_256_with_a_293_resize():
    config = load_config()
    assert config.backbone == "efficientnet-lite0"
    assert (config.image_size, config.resize_shorter_side) == (256, 293)
    assert config.accuracy_floor == 0.90


def test_overrides_replace_single_fields_and_none_keeps_the_file_value():
    config = load_config(overrides={"epochs": 1, "lr": None, "aug_enabled": False})
    assert config.epochs == 1
    assert config.lr == load_config().lr
    assert config.augmentation.enabled is False


def test_params_are_flat_for_mlflow():
    params = load_config().flat_params()
    assert params["aug_min_scale"] == 0.2
    assert not any(isinstance(v, dict) for v in params.values())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 225}, "even"),
        ({"backbone": "vgg16"}, "backbone"),
        ({"epochs": 0, "frozen_epochs": 0}, "epochs"),
        ({"ensemble_heads": 2, "method": "fine_tune"}, "ensemble_heads"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("epoch: 3\n")  # typo of `epochs`
    with pytest.raises(ConfigError, match="epoch"):
        load_config(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_settings_read_plantops_variables(monkeypatch):
    monkeypatch.setenv("PLANTOPS_S3_ENDPOINT", "s3.example:9000")
    monkeypatch.setenv("PLANTOPS_S3_SECURE", "true")
    monkeypatch.setenv("PLANTOPS_S3_SECRET_KEY", "s3cret")
    settings = Settings()
    assert settings.s3_url == "https://s3.example:9000"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    "recipe",
    sorted((Path(__file__).parents[2] / "benchmarks" / "recipes").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_every_benchmark_recipe_loads_and_finds_its_review_file(recipe):
    config = load_config(recipe)
    assert config.label_review is None or config.label_review.is_file()
