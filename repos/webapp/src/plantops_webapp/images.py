"""Recognise the image formats the web app accepts from their first bytes, never the file name,
and refuse from the header the images the inference API would refuse for their size or shape.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageMode


@dataclass(frozen=True)
class ImageFormat:
    name: str
    extension: str
    media_type: str


# How each format the inference API opens starts (its Pillow name): every format of the
# API's contract that browsers show must have one here, or the import fails.
MAGIC: dict[str, Callable[[bytes], bool]] = {
    "JPEG": lambda data: data.startswith(b"\xff\xd8\xff"),
    "PNG": lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    "WEBP": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
    "GIF": lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
}


def _from_contract() -> dict[str, ImageFormat]:
    """The API's formats that browsers show (contracts/vendored/inference-api/image-formats.json):
    the result and review pages show the photo back."""
    path = Path(__file__).resolve().parent / "contracts/vendored/inference-api/image-formats.json"
    formats = json.loads(path.read_text())["formats"]
    return {
        fmt["pillow"]: ImageFormat(fmt["name"], fmt["extension"], fmt["media_type"])
        for fmt in formats
        if fmt["shown_by_browsers"]
    }


_ACCEPTED = _from_contract()
_UNSNIFFED = sorted(set(_ACCEPTED) - set(MAGIC))
if _UNSNIFFED:
    raise RuntimeError(f"no magic number for the API's format(s) {_UNSNIFFED}: add them to MAGIC")
JPEG, PNG, WEBP, GIF = (_ACCEPTED[name] for name in ("JPEG", "PNG", "WEBP", "GIF"))
ACCEPTED_FORMATS = tuple(_ACCEPTED.values())
PILLOW_FORMATS = tuple(_ACCEPTED)


def sniff(data: bytes) -> ImageFormat | None:
    """The format `data` is in, from its magic number; None for anything else."""
    for name, fmt in _ACCEPTED.items():
        if MAGIC[name](data):
            return fmt
    return None


def accepted_names() -> str:
    """'JPEG, PNG, WebP or GIF', for messages and the upload page."""
    names = [fmt.name for fmt in ACCEPTED_FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1]


class ImageRefused(Exception):
    """An image over the budget: the status and message the inference API gives for it."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class ImageBudget:
    """The inference API's budget per image (its preprocessing.py), read from the header.

    The same rule and the same messages as the API, so that the page says what the API
    would say without sending it a photo it would refuse.
    """

    max_pixels: int
    max_aspect_ratio: float

    def pixel_limit(self, mode: str = "RGB") -> int:
        """`max_pixels` is the budget of an 8-bit RGB frame; a mode of more bytes a pixel
        (RGBA, CMYK, 32-bit) gets as many bytes, so fewer pixels (the API's rule)."""
        return self.max_pixels * 3 // max(bytes_per_pixel(mode), 3)

    def check(self, data: bytes) -> None:
        try:
            header = read_header(data)
        except Image.DecompressionBombError:  # too large for Pillow to even size it
            raise ImageRefused(413, self._too_large(self.max_pixels)) from None
        if header is None:
            return  # unreadable header: the API says what is wrong with the file
        (width, height), mode = header
        limit = self.pixel_limit(mode)
        if width * height > limit:
            raise ImageRefused(413, self._too_large(limit, f" ({width}x{height})", mode))
        if max(width, height) / max(min(width, height), 1) > self.max_aspect_ratio:
            raise ImageRefused(
                422,
                f"The image is {width}x{height}: its long side is more than "
                f"{self.max_aspect_ratio:g} times its short side, which this API does not "
                "accept. Crop it first.",
            )

    def _too_large(self, limit: int, size: str = "", mode: str = "RGB") -> str:
        if limit < self.max_pixels:
            accepted = (
                f"at most {limit} pixels are accepted in mode {mode} ({self.max_pixels} in RGB)"
            )
        else:
            accepted = f"at most {limit} pixels are accepted"
        return f"The image is too large{size}: {accepted}. Resize it first."


def bytes_per_pixel(mode: str) -> int:
    """Bytes a decoded pixel takes in Pillow's `mode` (RGB 3, RGBA and CMYK 4, L and P 1)."""
    described = ImageMode.getmode(mode)
    return len(described.bands) * int(described.typestr[-1])


def read_header(data: bytes) -> tuple[tuple[int, int], str] | None:
    """((width, height), Pillow mode) from the header alone; None if unreadable.

    Raises Pillow's DecompressionBombError for a size over Pillow's own hard limit.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
                return image.size, image.mode
    except Image.DecompressionBombError:
        raise
    except Exception:  # Pillow raises many types for unreadable input
        return None
