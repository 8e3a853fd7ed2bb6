"""`make bench-images`: what one hostile or large upload costs the API, one JSON line each.

Each file is built here, then handed to a fresh process that reads it, notes its peak
RSS, runs the API's own decode + preprocess (`preprocess_bytes`, default budget) once,
and reports the growth of its peak RSS and the wall time, with the outcome
(the shape, or the error code the API would answer). The cases are the issue's hostile
images (extreme aspect ratios, tiny files declaring huge sizes, many frames) and the
largest ordinary photos the budget accepts.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from plantops_inference_api.config import Settings
from plantops_inference_api.errors import ClientError
from plantops_inference_api.preprocessing import PreprocessingSpec, preprocess_bytes

SPEC = PreprocessingSpec(
    format_version=1,
    input_name="image",
    output_name="logits",
    labels=["dandelion", "grass"],
    resize_shorter_side=256,
    resample="bilinear",
    crop_size=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)


def _encode(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def _noise(size: tuple[int, int]) -> Image.Image:
    # Photo-like entropy so that a JPEG of it has a photo's size.
    return Image.effect_noise(size, 60).convert("RGB")


def _portrait_jpeg(size: tuple[int, int]) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone photo taken upright: rotated on decode (one more copy)
    return _encode(_noise(size), "JPEG", quality=90, exif=exif.tobytes())


def _frames(fmt: str, count: int, **save: object) -> bytes:
    frames = [Image.new("RGB", (640, 480), (0, 200 * (i % 2), 100)) for i in range(count)]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], **save)


def _rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


def _smooth(size: tuple[int, int], mode: str) -> Image.Image:
    # A smooth picture: many pixels in a file well under the upload limit.
    return Image.linear_gradient("L").resize(size).convert(mode)


def _largest_accepted(mode: str) -> Image.Image:
    # The budget is an RGB frame's bytes: modes of more bytes a pixel get fewer pixels.
    side = int(Settings().image_budget.pixel_limit(mode) ** 0.5)
    return _smooth((side, side), mode)


CASES = {
    "png_4000x1": lambda: _encode(Image.new("L", (4000, 1)), "PNG"),
    "png_1x30000": lambda: _encode(Image.new("L", (1, 30000)), "PNG"),
    "png_declares_20000x20000": lambda: _encode(Image.new("1", (20000, 20000)), "PNG"),
    "gif_1000_frames": lambda: _frames("GIF", 1000),
    "webp_200_frames": lambda: _frames("WEBP", 200),
    "tiff_200_pages": lambda: _frames("TIFF", 200, compression="tiff_deflate"),
    "jpeg_phone_4032x3024_rotated": lambda: _portrait_jpeg((4032, 3024)),
    "png_rgba_4032x3024": lambda: _encode(_smooth((4032, 3024), "RGBA"), "PNG"),
    "png_rgba_largest_accepted": lambda: _encode(_largest_accepted("RGBA"), "PNG"),
    "png_rgb_4032x3024": lambda: _encode(_smooth((4032, 3024), "RGB"), "PNG"),
    "png_palette_largest_accepted": lambda: _encode(_largest_accepted("P"), "PNG"),
    "jpeg_largest_accepted_rotated": lambda: _encode(
        _largest_accepted("RGB"), "JPEG", exif=_rotated()
    ),
    # The largest photo decoded at full scale (ingestion's fmt/ layer: 1024 px at most).
    "jpeg_1024x1024": lambda: _encode(_noise((1024, 1024)), "JPEG", quality=90),
}


def peak_rss_kb() -> int:
    # VmHWM belongs to this process's own memory map (ru_maxrss would include the parent's).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_case(name: str, path: Path) -> dict:
    data = path.read_bytes()
    before_kb = peak_rss_kb()
    start = time.perf_counter()
    try:
        shape = list(preprocess_bytes(data, SPEC, Settings().image_budget).shape)
        outcome = f"preprocessed {shape}"
    except ClientError as exc:
        outcome = f"{exc.status_code} {exc.code}"
    seconds = time.perf_counter() - start
    peak_kb = peak_rss_kb()
    return {
        "case": name,
        "file_bytes": len(data),
        "outcome": outcome,
        "seconds": round(seconds, 3),
        "budget": f"{Settings().max_image_pixels} px, {Settings().max_aspect_ratio:g}:1",
        "peak_rss_growth_mb": round((peak_kb - before_kb) / 1024, 1),
    }


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(run_case(sys.argv[1], Path(sys.argv[2]))))
        return
    names = sys.argv[1:] or list(CASES)
    with tempfile.TemporaryDirectory() as folder:
        for name in names:  # one process per case: a peak RSS is never lowered
            path = Path(folder) / name
            path.write_bytes(CASES[name]())
            subprocess.run([sys.executable, __file__, name, str(path)], check=True)


if __name__ == "__main__":
    main()
