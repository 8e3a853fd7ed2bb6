"""The serving preprocessing, read from the model's `preprocessing.json`.

The spec is written by training (docs/architecture.md, "Model artifacts"); this module
applies it exactly as written there, and nothing about it is hard-coded here:
EXIF orientation, RGB, resize of the shorter side, centre crop, /255, (x - mean) / std,
HWC -> CHW.

Decoding trusts nothing the client says: the format is sniffed from the bytes and only
raster formats a camera or browser produces are opened, sizes are checked from the header
before any pixel is decoded (decompression bombs), and any decoder failure is an
`InvalidImage`, never a server error.

The work per image is bounded from the header alone (`ImageBudget`): at most
`max_pixels` decoded pixels, and an aspect ratio of at most `max_aspect_ratio`, because
"shorter side -> resize_shorter_side" multiplies the long side by the same factor (a
4000x1 image would become 1,024,000x256). Only the first frame of an animated or
multi-page file is decoded. Images within the budget are preprocessed exactly as the spec
says: nothing is cropped or scaled differently.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from plantops_inference_api.contract_files import accepted_formats, preprocessing_problem
from plantops_inference_api.errors import BadAspectRatio, ImageTooLarge, InvalidImage
from plantops_inference_api.novelty import NoveltySpec

# Formats opened (contracts/image-formats.json); everything else (PDF, HTML, EPS, SVG,
# ...) is refused.
ACCEPTED_FORMATS = tuple(fmt["pillow"] for fmt in accepted_formats())
ACCEPTED_NAMES = ", ".join(fmt["name"] for fmt in accepted_formats()[:-1]) + (
    f" or {accepted_formats()[-1]['name']}"
)

RESAMPLE_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class PreprocessingSpec(BaseModel):
    """`preprocessing.json`, format version 1."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format_version: Literal[1]
    input_name: str = Field(min_length=1)
    output_name: str = Field(min_length=1)
    labels: list[str] = Field(min_length=2)
    resize_shorter_side: int = Field(gt=0)
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"]
    crop_size: int = Field(gt=0)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # A second graph output (the pooled features) and how the novelty score is computed
    # from it (novelty.py); both absent for a model exported without a novelty reference.
    embedding_name: str | None = Field(default=None, min_length=1)
    novelty: NoveltySpec | None = None

    @model_validator(mode="after")
    def consistent(self) -> PreprocessingSpec:
        if self.crop_size > self.resize_shorter_side:
            raise ValueError("crop_size must not exceed resize_shorter_side")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        if any(s <= 0 for s in self.std):
            raise ValueError("std must be positive")
        if (self.novelty is None) != (self.embedding_name is None):
            raise ValueError("novelty and embedding_name go together: both or neither")
        return self

    @classmethod
    def read(cls, path: Path) -> PreprocessingSpec:
        """Read and validate a spec file; a ValueError says what is wrong with it."""
        try:
            document = json.loads(path.read_text())
            # The writer's contract first (vendored from ml-training), then our own model.
            problem = preprocessing_problem(document)
            if problem is not None:
                raise ValueError(f"it breaks preprocessing.schema.json at {problem}")
            return cls.model_validate(document)
        except (json.JSONDecodeError, ValidationError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"{path.name} is not a valid preprocessing spec: {exc}") from exc


@dataclass(frozen=True)
class ImageBudget:
    """What one image may cost, checked from its header before any pixel is decoded."""

    max_pixels: int
    max_aspect_ratio: float

    def check(self, width: int, height: int) -> None:
        if width < 1 or height < 1:
            raise InvalidImage("The image has no pixels.")
        if width * height > self.max_pixels:
            raise ImageTooLarge(too_many_pixels_message(self.max_pixels, width, height))
        if max(width, height) / min(width, height) > self.max_aspect_ratio:
            raise BadAspectRatio(bad_aspect_ratio_message(self.max_aspect_ratio, width, height))


def decode_image(data: bytes, budget: ImageBudget) -> Image.Image:
    """Bytes from a client to an RGB image with its EXIF orientation applied."""
    if not data:
        raise InvalidImage(f"The file is empty. Send a {ACCEPTED_NAMES} image.")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below decides; Pillow's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(too_many_pixels_message(budget.max_pixels)) from exc
    except Exception as exc:  # Pillow raises many types for unreadable input
        raise InvalidImage(f"The file is not an image this API reads ({ACCEPTED_NAMES}).") from exc
    budget.check(*image.size)
    try:
        image.load()  # the first frame only: later frames are never read
        # In place, and no convert() of an RGB image: each would be a full copy, doubling
        # the peak memory of an ordinary photo.
        ImageOps.exif_transpose(image, in_place=True)
        return image if image.mode == "RGB" else image.convert("RGB")
    except Exception as exc:  # truncated or corrupt pixel data
        raise InvalidImage(
            f"The {image.format} image could not be decoded: it is truncated or corrupt."
        ) from exc


def too_many_pixels_message(limit: int, width: int = 0, height: int = 0) -> str:
    size = f" ({width}x{height})" if width else ""
    return f"The image is too large{size}: at most {limit} pixels are accepted. Resize it first."


def bad_aspect_ratio_message(limit: float, width: int, height: int) -> str:
    return (
        f"The image is {width}x{height}: its long side is more than {limit:g} times its "
        "short side, which this API does not accept. Crop it first."
    )


def resized_size(width: int, height: int, shorter_side: int) -> tuple[int, int]:
    """(width, height) with the shorter side at `shorter_side`; the other is Python-rounded."""
    short, long = min(width, height), max(width, height)
    new_long = round(long * shorter_side / short)
    return (shorter_side, new_long) if width <= height else (new_long, shorter_side)


def resize_and_crop(image: Image.Image, spec: PreprocessingSpec) -> Image.Image:
    """Resize the shorter side to `resize_shorter_side`, then centre-crop `crop_size`."""
    size = resized_size(image.width, image.height, spec.resize_shorter_side)
    image = image.resize(size, RESAMPLE_FILTERS[spec.resample])
    left = (size[0] - spec.crop_size) // 2
    top = (size[1] - spec.crop_size) // 2
    return image.crop((left, top, left + spec.crop_size, top + spec.crop_size))


def to_model_input(image: Image.Image, spec: PreprocessingSpec) -> np.ndarray:
    """A cropped RGB image to a normalised float32 `[3, H, W]` array."""
    pixels = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def preprocess(image: Image.Image, spec: PreprocessingSpec) -> np.ndarray:
    """A decoded RGB image to the model's input for one image."""
    return to_model_input(resize_and_crop(image, spec), spec)


def preprocess_bytes(data: bytes, spec: PreprocessingSpec, budget: ImageBudget) -> np.ndarray:
    """Client bytes to the model's input: decoding and preprocessing in one call."""
    return preprocess(decode_image(data, budget), spec)
