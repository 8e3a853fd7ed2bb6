"""The serving preprocessing, written once (docs/architecture.md, "Model artifacts").

Training's validation transform, the test-split evaluation, the ONNX check and the
`preprocessing.json` written beside the model all come from this module, so the
inference API (which implements the same spec from the JSON) sees no train/serve skew.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from plantops_ml_training.contract_files import PREPROCESSING_SCHEMA, first_problem

FORMAT_VERSION = 1
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
# EfficientNet-Lite's ImageNet weights expect [-1, 1] inputs: mean = std = 0.5.
LITE_MEAN = (0.5, 0.5, 0.5)
LITE_STD = (0.5, 0.5, 0.5)
# ImageNet statistics, for torchvision backbones.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


@dataclass(frozen=True)
class PreprocessingSpec:
    """The contents of `preprocessing.json`: everything needed to feed the ONNX model."""

    labels: list[str]
    resize_shorter_side: int
    crop_size: int
    mean: list[float] = field(default_factory=lambda: list(LITE_MEAN))
    std: list[float] = field(default_factory=lambda: list(LITE_STD))
    resample: str = "bilinear"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    format_version: int = FORMAT_VERSION
    # The graph's second output (the pooled features) and how the novelty score is
    # computed from it (novelty.py); both None for a model exported without them.
    embedding_name: str | None = None
    novelty: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # As strict as the API's reader: contracts/preprocessing.schema.json, plus what a
        # schema cannot say. A spec we could not serve is refused before it is written.
        problem = first_problem(PREPROCESSING_SCHEMA, json.loads(self.to_json()))
        if problem is not None:
            raise ValueError(f"preprocessing spec breaks {PREPROCESSING_SCHEMA} at {problem}")
        if self.crop_size > self.resize_shorter_side:
            raise ValueError("crop_size must not exceed resize_shorter_side")

    def to_json(self) -> str:
        # Without a novelty reference the file is exactly the format-1 fields.
        fields = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(fields, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PreprocessingSpec:
        document = json.loads(text)
        problem = first_problem(PREPROCESSING_SCHEMA, document)
        if problem is not None:
            raise ValueError(f"preprocessing.json breaks {PREPROCESSING_SCHEMA} at {problem}")
        # Properties added by later versions of the contract are allowed, and unknown here.
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in document.items() if k in known}
        values["mean"], values["std"] = list(values["mean"]), list(values["std"])
        return cls(**values)

    def write(self, path: Path) -> Path:
        path.write_text(self.to_json())
        return path


def load_rgb(source: str | Path | Image.Image) -> Image.Image:
    """Open an image, apply its EXIF orientation and convert it to RGB."""
    image = source if isinstance(source, Image.Image) else Image.open(source)
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def resize_and_crop(image: Image.Image, spec: PreprocessingSpec) -> Image.Image:
    """Resize the shorter side to `resize_shorter_side`, then centre-crop `crop_size`."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new_long = round(long * spec.resize_shorter_side / short)
    if width <= height:
        size = (spec.resize_shorter_side, new_long)
    else:
        size = (new_long, spec.resize_shorter_side)
    image = image.resize(size, _RESAMPLE[spec.resample])
    left = (size[0] - spec.crop_size) // 2
    top = (size[1] - spec.crop_size) // 2
    return image.crop((left, top, left + spec.crop_size, top + spec.crop_size))


def to_model_input(image: Image.Image, spec: PreprocessingSpec) -> np.ndarray:
    """A cropped RGB image to a normalised float32 CHW array."""
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1).copy()


def preprocess(source: str | Path | Image.Image, spec: PreprocessingSpec) -> np.ndarray:
    """The whole serving preprocessing: a file or PIL image to a float32 `[3, H, W]` array."""
    return to_model_input(resize_and_crop(load_rgb(source), spec), spec)


def preprocess_batch(sources: list, spec: PreprocessingSpec) -> np.ndarray:
    """Several images to one float32 `[N, 3, H, W]` batch."""
    return np.stack([preprocess(source, spec) for source in sources])
