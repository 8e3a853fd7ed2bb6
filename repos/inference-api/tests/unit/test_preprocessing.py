"""The preprocessing spec applied exactly as docs/architecture.md writes it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import image_bytes
from modelkit import spec_dict
from PIL import Image

from plantops_inference_api.errors import BadAspectRatio, ImageTooLarge, InvalidImage
from plantops_inference_api.preprocessing import (
    ImageBudget,
    PreprocessingSpec,
    decode_image,
    preprocess,
    preprocess_bytes,
    resize_and_crop,
    resized_size,
)

pytestmark = pytest.mark.unit

BUDGET = ImageBudget(max_pixels=40_000_000, max_aspect_ratio=8.0)


def spec(**overrides) -> PreprocessingSpec:
    return PreprocessingSpec.model_validate(spec_dict(["a", "b", "c"], **overrides))


def test_pixels_are_cropped_scaled_normalised_per_channel_and_made_chw():
    # 2 wide, 4 tall; pixel (x, y) = (10y + x, 100 + 10y + x, 200 + 10y + x).
    hwc = np.array(
        [[[10 * y + x, 100 + 10 * y + x, 200 + 10 * y + x] for x in range(2)] for y in range(4)],
        dtype=np.uint8,
    )
    s = spec(resize_shorter_side=2, crop_size=2, resample="nearest",
             mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125))  # fmt: skip
    out = preprocess(Image.fromarray(hwc), s)
    # Shorter side already 2: no resize; crop top = (4 - 2) // 2 = 1, so rows 1 and 2.
    rows = np.array([[10, 11], [20, 21]], dtype=np.float32)
    expected = np.stack(
        [
            (rows / np.float32(255) - np.float32(0.1)) / np.float32(0.5),
            ((rows + 100) / np.float32(255) - np.float32(0.2)) / np.float32(0.25),
            ((rows + 200) / np.float32(255) - np.float32(0.3)) / np.float32(0.125),
        ]
    )
    assert out.dtype == np.float32
    assert out.shape == (3, 2, 2)
    np.testing.assert_array_equal(out, expected)


def test_centre_crop_offsets_are_floor_of_half_the_margin():
    # 5 wide, 3 tall, unique values; shorter side 3 kept, crop 2: left 1, top 0.
    hwc = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(3, 5, 3)
    cropped = resize_and_crop(Image.fromarray(hwc), spec(resize_shorter_side=3, crop_size=2,
                                                         resample="nearest"))  # fmt: skip
    np.testing.assert_array_equal(np.asarray(cropped), hwc[0:2, 1:3])


@pytest.mark.parametrize(
    ("width", "height", "shorter", "expected"),
    [
        (3, 5, 2, (2, 3)),  # 3.33 -> 3
        (5, 3, 2, (3, 2)),  # landscape: the width is the long side
        (4, 6, 3, (3, 4)),  # 4.5 -> 4: Python's round, as the contract says
        (10, 4, 3, (8, 3)),  # 7.5 -> 8
        (640, 480, 256, (341, 256)),
        (7, 7, 256, (256, 256)),  # small images are enlarged
    ],
)
def test_shorter_side_is_resized_and_the_long_side_rounded(width, height, shorter, expected):
    assert resized_size(width, height, shorter) == expected


def test_a_uniform_photo_gives_the_exact_normalised_colour_at_crop_size():
    out = preprocess_bytes(image_bytes((51, 102, 255), (100, 50), "PNG"), spec(), BUDGET)
    assert out.shape == (3, 32, 32)
    # 51/255 = 0.2, 102/255 = 0.4, 255/255 = 1.0; then (x - 0.5) / 0.5.
    np.testing.assert_allclose(out[0], -0.6, atol=1e-6)
    np.testing.assert_allclose(out[1], -0.2, atol=1e-6)
    np.testing.assert_allclose(out[2], 1.0, atol=1e-6)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "expected_rgb"),
    [
        (image_bytes((10, 200, 30), fmt="PNG"), (10, 200, 30)),
        (image_bytes((10, 200, 30), fmt="WEBP", lossless=True), (10, 200, 30)),
        (image_bytes((10, 200, 30), fmt="BMP"), (10, 200, 30)),
        (image_bytes((10, 200, 30), fmt="TIFF"), (10, 200, 30)),
        (image_bytes(120, fmt="PNG", mode="L"), (120, 120, 120)),
        (image_bytes((10, 200, 30, 255), fmt="PNG", mode="RGBA"), (10, 200, 30)),
        (_png(Image.new("RGB", (20, 20), (0, 0, 255)).convert("P")), (0, 0, 255)),
    ],
    ids=["png", "webp", "bmp", "tiff", "grayscale", "rgba", "palette"],
)
def test_lossless_formats_and_modes_decode_to_the_same_rgb(data, expected_rgb):
    image = decode_image(data, BUDGET)
    assert image.mode == "RGB"
    assert image.size == (64, 48) or image.size == (20, 20)
    assert image.getpixel((5, 5)) == expected_rgb


def test_gif_uses_its_first_frame_in_rgb():
    frames = [Image.new("P", (30, 20), 0), Image.new("P", (30, 20), 1)]
    frames[0].putpalette([200, 0, 0, 0, 200, 0] + [0] * 762)
    frames[1].putpalette([200, 0, 0, 0, 200, 0] + [0] * 762)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    image = decode_image(buffer.getvalue(), BUDGET)
    assert (image.mode, image.size, image.getpixel((3, 3))) == ("RGB", (30, 20), (200, 0, 0))


def test_cmyk_jpeg_is_converted_to_rgb():
    image = decode_image(image_bytes((0, 255, 255, 0), mode="CMYK"), BUDGET)
    r, g, b = image.getpixel((10, 10))
    assert image.mode == "RGB" and r > 200 and g < 40 and b < 40  # cyan-free, yellow+magenta: red


@pytest.mark.parametrize(("orientation", "top_left"), [(6, (250, 0, 0)), (8, (0, 0, 250))])
def test_exif_orientation_is_applied(orientation, top_left):
    # Stored 40 wide x 20 tall, left half red, right half blue. Orientation 6 turns it
    # 90 degrees clockwise to view (left half on top), 8 counter-clockwise (right on top).
    stored = Image.new("RGB", (40, 20), (250, 0, 0))
    stored.paste((0, 0, 250), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, "PNG", exif=exif)
    image = decode_image(buffer.getvalue(), BUDGET)
    assert image.size == (20, 40)  # upright: portrait
    assert image.getpixel((2, 2)) == top_left


def test_a_jpeg_exif_rotated_photo_is_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    image = decode_image(image_bytes(size=(60, 30), exif=exif.tobytes()), BUDGET)
    assert image.size == (30, 60)


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<!DOCTYPE html><html><body><img src='x.jpg'></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


@pytest.mark.parametrize(
    "data",
    [b"just some text", PDF, HTML, SVG, b"\xff\xd8\xff", bytes(range(256)) * 4],
    ids=["text", "pdf", "html", "svg", "jpeg-magic-only", "binary-noise"],
)
def test_what_is_not_an_image_is_refused_with_a_readable_message(data):
    with pytest.raises(InvalidImage, match="not an image this API reads"):
        decode_image(data, BUDGET)


def test_an_empty_file_is_refused():
    with pytest.raises(InvalidImage, match="empty"):
        decode_image(b"", BUDGET)


def test_a_truncated_jpeg_is_refused():
    whole = image_bytes(size=(256, 256))
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        decode_image(whole[: len(whole) // 2], BUDGET)


def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded():
    bomb = _png(Image.new("1", (10_000, 10_000)))  # 100 Mpixel, about 12 KB of PNG
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLarge, match="10000x10000"):
        decode_image(bomb, BUDGET)


def test_a_bomb_over_pillows_own_hard_limit_is_refused_as_too_large():
    bomb = _png(Image.new("1", (20_000, 20_000)))
    with pytest.raises(ImageTooLarge):
        decode_image(bomb, ImageBudget(10**12, 8.0))


@pytest.mark.parametrize(
    "size",
    [(4000, 1), (1, 30000), (81, 10), (2, 1000)],
    ids=["4000x1", "1x30000", "just-over-8:1", "2x1000"],
)
def test_an_extreme_aspect_ratio_is_refused_from_the_header(size):
    # A few hundred bytes of PNG whose resize would be 256 times longer than its long side.
    data = _png(Image.new("L", size))
    assert len(data) < 1000
    with pytest.raises(BadAspectRatio, match=f"{size[0]}x{size[1]}.*Crop it first"):
        decode_image(data, BUDGET)


@pytest.mark.parametrize("size", [(80, 10), (10, 80), (1, 1), (3000, 1000)])
def test_shapes_within_the_aspect_ratio_are_preprocessed(size):
    out = preprocess_bytes(_png(Image.new("RGB", size, (9, 99, 199))), spec(), BUDGET)
    assert out.shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("fmt", "save"),
    [("GIF", {}), ("WEBP", {}), ("TIFF", {"compression": "tiff_deflate"}), ("PNG", {})],
)
def test_a_small_file_declaring_huge_dimensions_is_refused_before_decoding(fmt, save):
    # 2000x2000 against a 1 Mpx budget (the same check as 40 Mpx, with less work for the test).
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 2000)).save(buffer, fmt, **save)
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(ImageTooLarge, match="2000x2000"):
        decode_image(buffer.getvalue(), ImageBudget(max_pixels=1_000_000, max_aspect_ratio=8))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF", "PNG"])
def test_only_the_first_of_many_frames_is_read(fmt):
    # 500 frames: the first is red, the others green and blue in turn (equal neighbours merge).
    first = Image.new("RGB", (40, 30), (200, 0, 0))
    others = [Image.new("RGB", (40, 30), (0, 200 * (i % 2), 200 * (1 - i % 2))) for i in range(499)]
    buffer = io.BytesIO()
    first.save(buffer, fmt, save_all=True, append_images=others)
    reopened = Image.open(io.BytesIO(buffer.getvalue()))
    assert getattr(reopened, "n_frames", 1) == 500
    image = decode_image(buffer.getvalue(), BUDGET)
    r, g, _ = image.getpixel((5, 5))
    assert (image.size, r > 150, g < 50) == ((40, 30), True, True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crop_size": 300, "resize_shorter_side": 256}, "crop_size"),
        ({"labels": ["only-one"]}, "labels"),
        ({"labels": ["a", "a"]}, "unique"),
        ({"format_version": 2}, "format_version"),
        ({"resample": "magic"}, "resample"),
        ({"std": [0.5, 0.0, 0.5]}, "std"),
        ({"mean": [0.5, 0.5]}, "mean"),
    ],
)
def test_an_inconsistent_spec_is_refused(tmp_path, change, message):
    path = tmp_path / "preprocessing.json"
    import json

    path.write_text(json.dumps({**spec_dict(["a", "b"]), **change}))
    with pytest.raises(ValueError, match=message):
        PreprocessingSpec.read(path)


# ------------------------------------------------- decoding small: the order of the steps

SERVING = {"resize_shorter_side": 256, "crop_size": 224, "resample": "bilinear"}


def plain_order(data: bytes, s: PreprocessingSpec) -> np.ndarray:
    """The spec step by step at full size: rotate, convert to RGB, resize, crop."""
    return preprocess(decode_image(data, BUDGET), s)


def _photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    # A gradient with noise: every pixel differs from its neighbours, as in a photo.
    rng = np.random.default_rng(seed)
    noise = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return Image.blend(Image.linear_gradient("L").resize(size).convert("RGB"), noise, 0.3)


def _encoded(image: Image.Image, fmt: str, orientation: int = 1, **save) -> bytes:
    if orientation != 1:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


@pytest.fixture
def decoded_sizes(monkeypatch) -> list[tuple[int, int]]:
    """The size each JPEG is decoded at (after any DCT scaling), in order."""
    from PIL import JpegImagePlugin

    sizes: list[tuple[int, int]] = []
    load = JpegImagePlugin.JpegImageFile.load

    def recording_load(self):
        if self.tile:  # pixels still to decode (later calls find them loaded)
            sizes.append(self.size)
        return load(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", recording_load)
    return sizes


@pytest.mark.parametrize(
    "data",
    [
        _encoded(_photo((1024, 768)), "JPEG", quality=90),
        _encoded(_photo((768, 1024)), "JPEG", quality=90),
        _encoded(_photo((1024, 1024)), "JPEG", quality=90),
        _encoded(_photo((1025, 1025)), "JPEG", quality=90),
        _encoded(_photo((600, 400)).convert("L"), "JPEG"),
        _encoded(_photo((600, 400)).convert("CMYK"), "JPEG"),
        _encoded(_photo((600, 400)), "PNG"),
        _encoded(_photo((600, 400)).convert("RGBA"), "PNG"),
        _encoded(_photo((600, 400)).convert("LA"), "PNG"),
        _encoded(_photo((600, 400)).convert("L"), "PNG"),
        _encoded(_photo((600, 400)).convert("1"), "PNG"),
        _encoded(_photo((600, 400)).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        _encoded(_photo((600, 400)), "GIF"),
        _encoded(_photo((600, 400)), "WEBP"),
        _encoded(_photo((600, 400)), "TIFF"),
    ],
    ids=[
        "jpeg-1024x768",
        "jpeg-768x1024",
        "jpeg-1024x1024",
        "jpeg-1025x1025",
        "jpeg-grey",
        "jpeg-cmyk",
        "png",
        "png-rgba",
        "png-la",
        "png-grey",
        "png-1bit",
        "png-palette",
        "gif",
        "webp",
        "tiff",
    ],
)
@pytest.mark.parametrize("resample", ["bilinear", "bicubic", "lanczos"])
def test_a_photo_at_training_size_gives_the_same_array_as_the_plain_order(data, resample):
    # Every photo of ingestion's fmt/ layer (JPEG, at most 1024 px a side) and every mode:
    # decoding small changes no pixel.
    s = spec(**{**SERVING, "resample": resample})
    np.testing.assert_array_equal(preprocess_bytes(data, s, BUDGET), plain_order(data, s))


def test_a_jpeg_up_to_1025_px_on_its_shorter_side_is_decoded_at_full_scale(decoded_sizes):
    for size in [(1024, 1024), (1025, 1025), (4000, 1025), (1025, 4000)]:
        preprocess_bytes(_encoded(Image.new("RGB", size), "JPEG"), spec(**SERVING), BUDGET)
    assert decoded_sizes == [(1024, 1024), (1025, 1025), (4000, 1025), (1025, 4000)]


def test_a_jpeg_recipe_with_a_small_resize_still_decodes_1024_px_photos_at_full_scale(
    decoded_sizes,
):
    small = spec(resize_shorter_side=183, crop_size=160)  # a 160-px recipe
    preprocess_bytes(_encoded(Image.new("RGB", (1024, 1024)), "JPEG"), small, BUDGET)
    assert decoded_sizes == [(1024, 1024)]


@pytest.mark.parametrize(
    ("size", "decoded"),
    [
        ((4032, 3024), (1008, 756)),  # a 12 Mpx phone photo: 1/4
        ((3024, 4032), (756, 1008)),
        ((1026, 1026), (513, 513)),  # the smallest decoded at 1/2: shorter side 513 > 512
        ((2052, 2052), (513, 513)),  # 1/4
        ((8000, 1500), (4000, 750)),  # the shorter side decides
    ],
)
def test_a_large_jpeg_is_decoded_at_reduced_scale_and_resized_to_the_spec_size(
    decoded_sizes, size, decoded
):
    image = decode_image(_encoded(Image.new("RGB", size), "JPEG"), BUDGET, spec(**SERVING))
    assert decoded_sizes == [decoded]
    assert image.size == resized_size(*size, 256)


def test_a_large_jpeg_decoded_at_reduced_scale_stays_within_a_few_levels_of_full_decode():
    data = _encoded(_photo((4032, 3024)), "JPEG", quality=90)
    s = spec(**SERVING, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # the input is pixel/255
    difference = np.abs(preprocess_bytes(data, s, BUDGET) - plain_order(data, s)) * 255
    assert difference.max() <= 8  # noise is the worst case; measured: 2 levels, mean 0.3


def test_a_large_exif_rotated_phone_jpeg_comes_out_upright(decoded_sizes):
    # Stored 4032x3024 (as the sensor reads it), left half red, right half blue; EXIF 6:
    # turn 90 degrees clockwise to view, so upright it is portrait with red on top.
    stored = Image.new("RGB", (4032, 3024), (250, 0, 0))
    stored.paste((0, 0, 250), (2016, 0, 4032, 3024))
    image = decode_image(_encoded(stored, "JPEG", orientation=6), BUDGET, spec(**SERVING))
    assert decoded_sizes == [(1008, 756)]  # decoded at 1/4, in the stored orientation
    assert image.size == (256, 341)  # upright: portrait, shorter side 256
    top, bottom = image.getpixel((128, 20)), image.getpixel((128, 320))
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_rotating_first(orientation):
    # Resized before it is rotated: flips are exact; a quarter turn swaps Pillow's two
    # resize passes, so rounding may differ by one level of 255.
    data = _encoded(_photo((700, 500)), "PNG", orientation=orientation)
    s = spec(**SERVING, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    ours, plain = preprocess_bytes(data, s, BUDGET), plain_order(data, s)
    assert ours.shape == plain.shape
    np.testing.assert_allclose(ours, plain, rtol=0, atol=1.01 / 255 if orientation > 4 else 0)


def test_the_pixel_budget_is_an_rgb_frames_bytes_so_wider_modes_get_fewer_pixels():
    budget = ImageBudget(max_pixels=12_600_000, max_aspect_ratio=8.0)
    assert budget.pixel_limit("RGB") == budget.pixel_limit("L") == 12_600_000
    assert budget.pixel_limit("P") == budget.pixel_limit("1") == 12_600_000
    assert budget.pixel_limit("RGBA") == budget.pixel_limit("CMYK") == 9_450_000
    assert budget.pixel_limit("F") == 9_450_000  # one band of 4 bytes
    budget.check(3650, 2740, "RGB")  # 10 Mpx RGB: accepted
    with pytest.raises(ImageTooLarge, match="at most 9450000 pixels are accepted in mode RGBA"):
        budget.check(3650, 2740, "RGBA")


def test_a_10_mpx_rgba_png_is_refused_before_its_pixels_are_decoded():
    buffer = io.BytesIO()
    Image.new("RGBA", (3650, 2740), (10, 200, 10, 255)).save(buffer, "PNG")
    budget = ImageBudget(max_pixels=12_600_000, max_aspect_ratio=8.0)
    with pytest.raises(ImageTooLarge, match=r"\(3650x2740\).*\(12600000 in RGB\)"):
        decode_image(buffer.getvalue(), budget)
