"""Generated non-plant images, drawn deterministically from a seed (no files, no downloads).

The evaluation families of issue 17 (`EVAL_FAMILIES`): rendered text, screenshot-like UI
images, noise and solid colours. Nothing is chosen or trained on them: the benchmark and
the tests only report how many a model flags. `gradients` (smooth colour gradients and
geometric shapes) is a different family, kept apart for outlier-exposure experiments, so
that such a method is never tuned on what it is evaluated on.

`recoloured_flowers` makes plant-like outliers for outlier exposure from the training
photos themselves: their yellow flower heads turned red, pink, purple or white, the green
around them kept. Other plants are what the model confuses with dandelions; these are the
nearest such photos that are no evaluation set (issue 17).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

EVAL_FAMILIES = ("text", "screenshot", "noise", "solid")
OUTLIER_EXPOSURE_FAMILIES = ("gradients",)
SIZE = (320, 240)

_WORDS = (
    "invoice",
    "total",
    "amount",
    "due",
    "please",
    "pay",
    "within",
    "thirty",
    "days",
    "account",
    "number",
    "reference",
    "meeting",
    "agenda",
    "quarterly",
    "report",
    "revenue",
    "growth",
    "customer",
    "support",
    "login",
    "password",
    "settings",
    "profile",
    "dashboard",
    "notifications",
    "download",
    "upload",
    "cancel",
    "submit",
    "search",
)


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def text_image(rng: random.Random) -> Image.Image:
    """A page of rendered words: dark on light or light on dark, several sizes."""
    dark = rng.random() < 0.7
    background = (rng.randint(225, 255),) * 3 if dark else (rng.randint(0, 40),) * 3
    ink = (rng.randint(0, 60),) * 3 if dark else (rng.randint(200, 255),) * 3
    image = Image.new("RGB", SIZE, background)
    draw = ImageDraw.Draw(image)
    size = rng.choice([12, 16, 20, 28])
    y = rng.randint(4, 20)
    while y < SIZE[1] - size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9)))
        draw.text((rng.randint(4, 20), y), line, fill=ink, font=_font(size))
        y += int(size * rng.uniform(1.2, 1.8))
    return image


def screenshot_image(rng: random.Random) -> Image.Image:
    """A UI-like screen: title bar, side bar, buttons, text fields and labels."""
    image = Image.new("RGB", SIZE, (rng.randint(235, 255),) * 3)
    draw = ImageDraw.Draw(image)
    accent = _colour(rng)
    draw.rectangle((0, 0, SIZE[0], 28), fill=accent)
    draw.text((8, 6), " ".join(rng.sample(_WORDS, 2)), fill=(255, 255, 255), font=_font(14))
    side = rng.randint(60, 110)
    draw.rectangle((0, 28, side, SIZE[1]), fill=(rng.randint(30, 70),) * 3)
    for i in range(rng.randint(3, 7)):
        draw.text((8, 40 + 22 * i), rng.choice(_WORDS), fill=(230, 230, 230), font=_font(12))
    y = 40
    while y < SIZE[1] - 30:
        x = side + 10
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + 140, y + 20), outline=(160, 160, 160), fill=(255, 255, 255))
            draw.text((x + 4, y + 3), rng.choice(_WORDS), fill=(90, 90, 90), font=_font(12))
        else:
            draw.rounded_rectangle((x, y, x + 80, y + 22), radius=5, fill=accent)
            draw.text((x + 8, y + 4), rng.choice(_WORDS), fill=(255, 255, 255), font=_font(12))
        y += rng.randint(28, 40)
    return image


def noise_image(rng: random.Random) -> Image.Image:
    """Uniform, Gaussian, salt-and-pepper or blocky colour noise."""
    gen = np.random.default_rng(rng.randrange(2**32))
    shape = (SIZE[1], SIZE[0], 3)
    kind = rng.choice(["uniform", "gaussian", "salt", "blocks"])
    pixels: np.ndarray
    if kind == "uniform":
        pixels = gen.integers(0, 256, shape)
    elif kind == "gaussian":
        pixels = np.clip(gen.normal(128, rng.uniform(20, 80), shape), 0, 255)
    elif kind == "salt":
        pixels = np.where(gen.random(shape[:2])[..., None] < 0.5, 0, 255) * np.ones(3)
    else:
        small = gen.integers(0, 256, (SIZE[1] // 16, SIZE[0] // 16, 3)).astype(np.uint8)
        return Image.fromarray(small).resize(SIZE, Image.Resampling.NEAREST)
    return Image.fromarray(pixels.astype(np.uint8))


def solid_image(rng: random.Random) -> Image.Image:
    """One colour, any colour (green and yellow included)."""
    return Image.new("RGB", SIZE, _colour(rng))


def gradients_image(rng: random.Random) -> Image.Image:
    """A smooth two-colour gradient with a few filled shapes (the outlier-exposure family)."""
    a, b = np.array(_colour(rng), float), np.array(_colour(rng), float)
    t = np.linspace(0, 1, SIZE[0])[None, :, None] * np.ones((SIZE[1], 1, 1))
    image = Image.fromarray((a * (1 - t) + b * t).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(1, 4)):
        x, y = rng.randrange(SIZE[0]), rng.randrange(SIZE[1])
        r = rng.randint(10, 70)
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - r, y - r, x + r, y + r), fill=_colour(rng))
    return image


_MAKERS = {
    "text": text_image,
    "screenshot": screenshot_image,
    "noise": noise_image,
    "solid": solid_image,
    "gradients": gradients_image,
}


def generated_images(family: str, count: int, seed: int = 0) -> list[Image.Image]:
    """`count` images of `family`, the same ones for the same seed on every machine."""
    if family not in _MAKERS:
        raise ValueError(f"unknown family {family!r}: one of {sorted(_MAKERS)}")
    return [_MAKERS[family](random.Random(f"{family}/{seed}/{i}")) for i in range(count)]


RECOLOURS = ("red", "pink", "purple", "white")
# Pillow's HSV has hue, saturation and value in 0-255. A dandelion's petals are bright,
# saturated and about 30-60 degrees of hue (20-43 here); the yellow-green of sunlit or
# blurred grass behind them starts near 63 degrees (45) and is darker.
_YELLOW_HUE = (20, 43)
_YELLOW_MIN_SATURATION = 90
_YELLOW_MIN_VALUE = 140
_TARGET_HUE = {"red": 250, "pink": 235, "purple": 195}  # about 353, 330, 275 degrees


def yellow_mask(image: Image.Image) -> np.ndarray:
    """`[H, W]` bool: the saturated, bright yellow pixels (a dandelion's flower head)."""
    return _yellow(np.asarray(image.convert("RGB").convert("HSV")))


def _yellow(hsv: np.ndarray) -> np.ndarray:
    hue, saturation, value = np.moveaxis(hsv, -1, 0)
    return (
        (hue >= _YELLOW_HUE[0])
        & (hue <= _YELLOW_HUE[1])
        & (saturation >= _YELLOW_MIN_SATURATION)
        & (value >= _YELLOW_MIN_VALUE)
    )


def recoloured_flowers(image: Image.Image, colour: str) -> Image.Image:
    """`image` with its yellow pixels turned `colour` (one of `RECOLOURS`), the rest as is."""
    if colour not in RECOLOURS:
        raise ValueError(f"unknown colour {colour!r}: one of {list(RECOLOURS)}")
    rgb = image.convert("RGB")
    hsv = np.asarray(rgb.convert("HSV")).copy()
    mask = _yellow(hsv)
    if colour == "white":
        hsv[..., 1][mask] //= 8
        hsv[..., 2][mask] = np.maximum(hsv[..., 2][mask], 235)
    else:
        hsv[..., 0][mask] = _TARGET_HUE[colour]
        if colour == "pink":  # pink is a paler red
            hsv[..., 1][mask] = (hsv[..., 1][mask] * 0.55).astype(np.uint8)
    recoloured = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
    # HSV and back is not lossless: only the recoloured pixels come from it.
    return Image.fromarray(np.where(mask[..., None], recoloured, np.asarray(rgb)))
