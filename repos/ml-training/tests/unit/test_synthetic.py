"""The recoloured training photos that outlier exposure learns "novel" from (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from plantops_ml_training.synthetic import RECOLOURS, recoloured_flowers, yellow_mask


@pytest.fixture(scope="module")
def dandelion(images_dir) -> Image.Image:
    """The first dandelion photo whose flower yellow covers a tenth of it or more."""
    for path in sorted((images_dir / "dandelion").glob("*.jpg"))[:40]:
        image = Image.open(path).convert("RGB")
        if yellow_mask(image).mean() >= 0.1:
            return image
    pytest.fail("no dandelion photo among the first 40 shows its flower head")


@pytest.mark.parametrize("colour", RECOLOURS)
def test_the_flower_head_changes_colour_and_the_rest_of_the_photo_does_not(dandelion, colour):
    mask = yellow_mask(dandelion)
    before, after = np.asarray(dandelion), np.asarray(recoloured_flowers(dandelion, colour))
    assert np.array_equal(after[~mask], before[~mask])
    assert yellow_mask(Image.fromarray(after)).mean() < 0.05 * mask.mean()
    red, green, blue = after[mask].astype(int).mean(axis=0)
    if colour == "white":
        assert min(red, green, blue) > 200
    elif colour == "purple":
        assert blue > green and red > green
    else:  # red and pink: red leads, green (yellow's other half) no longer matches it
        assert red > green + 60 and red > blue


def test_a_photo_without_yellow_comes_back_unchanged():
    leaves = Image.new("RGB", (64, 48), (60, 140, 50))
    assert not yellow_mask(leaves).any()
    assert np.array_equal(np.asarray(recoloured_flowers(leaves, "red")), np.asarray(leaves))


def test_an_unknown_colour_is_refused(dandelion):
    with pytest.raises(ValueError, match="unknown colour 'blue'"):
        recoloured_flowers(dandelion, "blue")
