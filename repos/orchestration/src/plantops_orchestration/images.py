"""Validating image bytes with Pillow and making the normalised fmt/ copy."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from plantops_orchestration.contract_files import accepted_image_formats

# Pillow format name -> file extension of the raw/ object: exactly the formats the
# inference API opens (its contracts/image-formats.json, vendored), so nothing is ingested
# that the served model could not be asked about, and nothing it reads is refused here.
EXTENSIONS = {fmt["pillow"]: fmt["extension"] for fmt in accepted_image_formats()}


class InvalidImage(ValueError):
    """The bytes are not an image we can use; the message says why."""


@dataclass(frozen=True)
class ImageLimits:
    min_side: int = 32
    max_pixels: int = 40_000_000
    fmt_max_side: int = 1024
    jpeg_quality: int = 90


@dataclass(frozen=True)
class CheckedImage:
    sha256: str
    ext: str
    width: int
    height: int
    fmt_jpeg: bytes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_and_normalise(data: bytes, limits: ImageLimits) -> CheckedImage:
    """Decode fully (so truncation shows), check the size, return the fmt/ JPEG."""
    if not data:
        raise InvalidImage("empty body")
    try:
        image = Image.open(io.BytesIO(data), formats=tuple(EXTENSIONS))
    except UnidentifiedImageError as error:
        raise InvalidImage(f"not an image ({_sniff(data)})") from error
    except Image.DecompressionBombError as error:
        raise InvalidImage(f"decompression bomb: {error}") from error
    width, height = image.size
    # Checked before decoding: a bomb is small on the wire and huge in memory.
    if width * height > limits.max_pixels:
        raise InvalidImage(
            f"decompression bomb: {width}x{height} pixels is over the limit of {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        raise InvalidImage(f"too small: {width}x{height}, need at least {limits.min_side} a side")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidImage(f"corrupt or truncated {image.format} image: {error}") from error
    ext = EXTENSIONS.get(image.format or "", (image.format or "bin").lower())
    return CheckedImage(sha256_hex(data), ext, width, height, normalise(image, limits))


def normalise(image: Image.Image, limits: ImageLimits) -> bytes:
    """EXIF-rotated, RGB (transparency on white), longest side <= fmt_max_side, JPEG."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    else:
        image = image.convert("RGB")
    image.thumbnail((limits.fmt_max_side, limits.fmt_max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=limits.jpeg_quality, optimize=True)
    return out.getvalue()


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page"
    if head.startswith((b"{", b"[")):
        return "JSON"
    try:
        with Image.open(io.BytesIO(data)) as image:  # header only: name what it is
            return f"{image.format}; accepted: {', '.join(EXTENSIONS)}"
    except Exception:  # Pillow raises many types for unreadable input
        return f"{len(data)} bytes of unknown format"
