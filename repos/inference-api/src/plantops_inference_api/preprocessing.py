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
multi-page file is decoded. Nothing is cropped or refused beyond that.

The memory per image is bounded by decoding small (`decode_image` with the spec): the
steps of the spec are done in an order that never makes a full-size copy.
- A JPEG whose shorter side is at least twice `dct_scaling_side` (over 4x
  `resize_shorter_side` and over 1024 px) is decoded by libjpeg at 1/2, 1/4 or 1/8 scale
  (DCT scaling, Pillow's `draft`), the largest factor that keeps its shorter side over
  both 2x `resize_shorter_side` and 512 px; the resize then goes to the size the spec
  gives for the upload's full size. A 12 Mpx phone photo decodes at 1008x756. Not the
  same pixels as a full decode (at most a few levels of 255 apart after the resize), so
  this is written in the preprocessing contract's description. Photos up to 1025 px on
  the shorter side, every photo of ingestion's fmt/ layer (1024 px at most), are decoded
  at full scale: their model input is bit-identical to the plain order.
- Every image is resized before it is rotated (EXIF) and converted to RGB: the resize
  runs band by band on the decoded bands (`_resize_to_rgb`), which Pillow computes with
  the same arithmetic as on the converted RGB image, so grey, RGBA, palette and 1-bit
  images give the same pixels as convert-then-resize. Flips commute exactly with the
  resize; a 90-degree EXIF rotation (orientations 5-8) gives pixels within 1 level of
  255 of rotate-then-resize (Pillow resizes rows then columns, and rotating swaps them).
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import ExifTags, Image, ImageMode, ImageOps
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

# ImageOps.exif_transpose's transposition for each EXIF orientation; applied here to the
# resized image, which is why the module names them.
EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPS_SIDES = frozenset(EXIF_TRANSPOSE[o] for o in (5, 6, 7, 8))
# A JPEG is decoded at reduced scale only while its shorter side stays above both this and
# twice the resize target: the photos of ingestion's fmt/ layer (at most 1024 px a side)
# are always decoded at full scale, whatever the recipe's size (dct_scaling_side).
DCT_SCALING_MIN_SIDE = 512

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

    def pixel_limit(self, mode: str = "RGB") -> int:
        """`max_pixels` is the budget of an 8-bit RGB frame (3 bytes a pixel); a mode of more
        bytes a pixel (RGBA, CMYK, 32-bit) gets as many bytes, so fewer pixels: a 12 Mpx
        RGBA PNG would cost 60 MB to decode and resize, against 51 MB for its RGB twin."""
        return self.max_pixels * 3 // max(bytes_per_pixel(mode), 3)

    def check(self, width: int, height: int, mode: str = "RGB") -> None:
        if width < 1 or height < 1:
            raise InvalidImage("The image has no pixels.")
        limit = self.pixel_limit(mode)
        if width * height > limit:
            raise ImageTooLarge(
                too_many_pixels_message(limit, width, height, mode, self.max_pixels)
            )
        if max(width, height) / min(width, height) > self.max_aspect_ratio:
            raise BadAspectRatio(bad_aspect_ratio_message(self.max_aspect_ratio, width, height))


def decode_image(
    data: bytes, budget: ImageBudget, spec: PreprocessingSpec | None = None
) -> Image.Image:
    """Bytes from a client to an RGB image with its EXIF orientation applied.

    With `spec`, the image comes out already resized (shorter side to
    `spec.resize_shorter_side`, as `resize_and_crop` would), and the full-size RGB and
    rotated copies never exist: a large JPEG is decoded at reduced scale, every image is
    resized before it is rotated and converted (see the module docstring).
    """
    image = _open(data, budget)
    header_size = image.size
    try:
        box = _draft(image, spec) if spec is not None else None
        image.load()  # the first frame only: later frames are never read
        if spec is None:
            # In place, and no convert() of an RGB image: each would be a full copy.
            ImageOps.exif_transpose(image, in_place=True)
            return image if image.mode == "RGB" else image.convert("RGB")
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        transpose = EXIF_TRANSPOSE.get(orientation)
        # The target is the spec's size for the upright image at its header's size (so a
        # reduced-scale decode is resized to the same size); rotating swaps the sides.
        width, height = header_size
        if transpose in SWAPS_SIDES:
            width, height = height, width
        size = resized_size(width, height, spec.resize_shorter_side)
        if transpose in SWAPS_SIDES:
            size = (size[1], size[0])
        resized = _resize_to_rgb(image, size, RESAMPLE_FILTERS[spec.resample], box)
        return resized if transpose is None else resized.transpose(transpose)
    except Exception as exc:  # truncated or corrupt pixel data
        raise InvalidImage(
            f"The {image.format} image could not be decoded: it is truncated or corrupt."
        ) from exc


def _open(data: bytes, budget: ImageBudget) -> Image.Image:
    """Open (header only) and check against the budget; no pixel is decoded yet."""
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
    budget.check(*image.size, image.mode)
    return image


def dct_scaling_side(spec: PreprocessingSpec) -> int:
    """A JPEG is decoded at 1/2, 1/4 or 1/8 scale only where its shorter side stays at
    least this long (Pillow's `draft` picks the largest such factor)."""
    return max(2 * spec.resize_shorter_side, DCT_SCALING_MIN_SIDE) + 1


def _draft(image: Image.Image, spec: PreprocessingSpec) -> tuple[float, float, float, float] | None:
    """Let libjpeg decode a large JPEG at reduced scale; the region of the original image
    in the reduced one's coordinates (None: decoded at full scale)."""
    side = dct_scaling_side(spec)
    if image.format != "JPEG" or min(image.size) < 2 * side:
        return None  # full scale: exactly the decode training's photos get
    drafted = image.draft("RGB", (side, side))
    return None if drafted is None else drafted[1]


def _resize_to_rgb(
    image: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling,
    box: tuple[float, float, float, float] | None,
) -> Image.Image:
    """`image.convert("RGB").resize(size, resample, box)`, pixel for pixel, without the
    full-size RGB copy: Pillow resizes each band on its own with the same arithmetic, so
    the bands that make up the RGB image are resized one at a time and merged small.
    (`Image.resize` itself would premultiply RGBA and LA by their alpha, and resizes P
    and 1 with "nearest" whatever it is asked: neither is what convert-then-resize does.)
    """
    if image.mode == "RGB":
        return image.resize(size, resample, box)
    bands: list[Image.Image]
    if image.mode in ("L", "LA", "1"):
        grey = image
        if image.mode != "L":  # LA: its grey band; 1: 0 and 255, as convert("RGB") makes them
            grey = image.getchannel(0) if image.mode == "LA" else image.convert("L")
        bands = [grey.resize(size, resample, box)] * 3
    elif image.mode == "RGBA":
        bands = [image.getchannel(c).resize(size, resample, box) for c in range(3)]
    elif image.mode == "P" and (palette := image.getpalette("RGB")) is not None:
        # Each band is the palette's column for that colour, looked up per pixel.
        palette += [0] * (768 - len(palette))
        bands = [image.point(palette[c::3], "L").resize(size, resample, box) for c in range(3)]
    else:  # CMYK, 16-bit, ...: the conversion mixes bands; rare, and done as the spec says
        return image.convert("RGB").resize(size, resample, box)
    return Image.merge("RGB", bands)


def bytes_per_pixel(mode: str) -> int:
    """Bytes a decoded pixel takes in Pillow's `mode` (RGB 3, RGBA and CMYK 4, L and P 1)."""
    described = ImageMode.getmode(mode)
    return len(described.bands) * int(described.typestr[-1])


def too_many_pixels_message(
    limit: int, width: int = 0, height: int = 0, mode: str = "RGB", rgb_limit: int = 0
) -> str:
    """The 413's message; the webapp words it the same (its images.py)."""
    size = f" ({width}x{height})" if width else ""
    if rgb_limit and limit < rgb_limit:
        accepted = f"at most {limit} pixels are accepted in mode {mode} ({rgb_limit} in RGB)"
    else:
        accepted = f"at most {limit} pixels are accepted"
    return f"The image is too large{size}: {accepted}. Resize it first."


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
    return centre_crop(image.resize(size, RESAMPLE_FILTERS[spec.resample]), spec.crop_size)


def centre_crop(image: Image.Image, crop_size: int) -> Image.Image:
    left = (image.width - crop_size) // 2
    top = (image.height - crop_size) // 2
    return image.crop((left, top, left + crop_size, top + crop_size))


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
    """Client bytes to the model's input: decoding and preprocessing in one call (the
    resize happens while decoding: `decode_image` with the spec)."""
    return to_model_input(centre_crop(decode_image(data, budget, spec), spec.crop_size), spec)
