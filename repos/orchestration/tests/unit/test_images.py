"""Image validation with Pillow and the normalised fmt/ copy."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from plantops_orchestration.images import ImageLimits, InvalidImage, check_and_normalise

pytestmark = pytest.mark.unit

LIMITS = ImageLimits(min_side=32, max_pixels=1_000_000, fmt_max_side=256, jpeg_quality=90)


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.frombytes(
        mode, size, bytes(range(256)) * (size[0] * size[1] * len(mode) // 256 + 1)
    )


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_a_jpeg_is_accepted_hashed_and_bounded_in_size():
    data = encode(noise((640, 320)))
    checked = check_and_normalise(data, LIMITS)
    assert (checked.ext, checked.width, checked.height) == ("jpg", 640, 320)
    assert len(checked.sha256) == 64
    fmt = decoded(checked.fmt_jpeg)
    assert (fmt.format, fmt.mode, fmt.size) == ("JPEG", "RGB", (256, 128))


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(noise((200, 100)), exif=exif)
    assert decoded(check_and_normalise(data, LIMITS).fmt_jpeg).size == (100, 200)


def test_transparent_png_becomes_rgb_on_white():
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    checked = check_and_normalise(encode(image, "PNG"), LIMITS)
    assert checked.ext == "png"
    assert decoded(checked.fmt_jpeg).getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty body"),
        (b"<!DOCTYPE html><html><body>login</body></html>", "not an image (an HTML page)"),
        (encode(noise((16, 200))), "too small: 16x200"),
        (encode(noise((300, 300)))[:2000], "truncated"),
        (encode(Image.new("1", (2000, 1000)), "PNG"), "decompression bomb: 2000x1000"),
    ],
    ids=["empty", "html", "too-small", "truncated", "bomb"],
)
def test_unusable_bytes_are_refused_with_a_reason(data, reason):
    with pytest.raises(InvalidImage, match=re.escape(reason)):
        check_and_normalise(data, LIMITS)
