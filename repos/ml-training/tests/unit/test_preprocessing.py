"""The serving preprocessing: the contract the inference API implements too."""

import json

import numpy as np
import pytest
from PIL import Image

from plantops_ml_training.preprocessing import (
    PreprocessingSpec,
    preprocess,
    resize_and_crop,
)

pytestmark = pytest.mark.unit

SPEC = PreprocessingSpec(labels=["dandelion", "grass"], resize_shorter_side=256, crop_size=224)


def test_json_has_exactly_the_contract_fields():
    data = json.loads(SPEC.to_json())
    assert data == {
        "format_version": 1,
        "input_name": "image",
        "output_name": "logits",
        "labels": ["dandelion", "grass"],
        "resize_shorter_side": 256,
        "resample": "bilinear",
        "crop_size": 224,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }
    assert PreprocessingSpec.from_json(SPEC.to_json()) == SPEC


def test_a_spec_with_a_novelty_reference_names_the_embedding_and_the_block():
    novelty = {
        "method": "knn_cosine",
        "params_file": "novelty.npz",
        "threshold": 0.3,
        "false_alarm_rate": 0.02,
    }
    spec = PreprocessingSpec(
        labels=["dandelion", "grass"],
        resize_shorter_side=256,
        crop_size=224,
        embedding_name="embedding",
        novelty=novelty,
    )
    data = json.loads(spec.to_json())
    assert (data["embedding_name"], data["novelty"]) == ("embedding", novelty)
    assert PreprocessingSpec.from_json(spec.to_json()) == spec


def test_landscape_image_keeps_its_aspect_then_is_centre_cropped():
    # 400x300: shorter side 300 -> 256, longer round(400*256/300) = 341; crop from (58, 16).
    image = Image.new("RGB", (400, 300))
    image.putpixel((200, 150), (255, 0, 0))
    resized = image.resize((341, 256), Image.Resampling.BILINEAR)
    expected = resized.crop((58, 16, 58 + 224, 16 + 224))
    actual = resize_and_crop(image, SPEC)
    assert actual.size == (224, 224)
    assert np.array_equal(np.asarray(actual), np.asarray(expected))


def test_portrait_image_is_resized_on_its_width():
    assert resize_and_crop(Image.new("RGB", (300, 500)), SPEC).size == (224, 224)


def test_pixels_are_scaled_and_normalised_channel_first():
    white = Image.new("RGB", (300, 300), (255, 0, 127))
    array = preprocess(white, SPEC)
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    assert array[0].min() == pytest.approx(1.0)
    assert array[1].max() == pytest.approx(-1.0)
    assert array[2, 0, 0] == pytest.approx(127 / 255 / 0.5 - 1)


def test_exif_orientation_is_applied(tmp_path):
    # A 40x20 image stored with "rotate 90" (orientation 6) is 20x40 when displayed.
    image = Image.new("RGB", (40, 20), (0, 255, 0))
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    tall = PreprocessingSpec(labels=["a", "b"], resize_shorter_side=20, crop_size=20)
    from plantops_ml_training.preprocessing import load_rgb

    assert load_rgb(path).size == (20, 40)
    assert preprocess(path, tall).shape == (3, 20, 20)


def test_greyscale_images_become_rgb():
    assert preprocess(Image.new("L", (300, 300), 128), SPEC).shape == (3, 224, 224)


def test_crop_larger_than_resize_is_refused():
    with pytest.raises(ValueError, match="crop_size"):
        PreprocessingSpec(labels=["a", "b"], resize_shorter_side=100, crop_size=200)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"format_version": 2}, "format_version"),
        ({"std": [0.5, 0.0, 0.5]}, "std/1"),
        ({"labels": ["grass", "grass"]}, "labels"),
        ({"labels": ["grass"]}, "labels"),
        ({"resample": "area"}, "resample"),
    ],
)
def test_a_spec_the_api_would_refuse_is_never_written(change, where):
    """The writer is as strict as the reader: contracts/preprocessing.schema.json."""
    values = {"labels": ["a", "b"], "resize_shorter_side": 256, "crop_size": 224, **change}
    with pytest.raises(ValueError, match=rf"preprocessing\.schema\.json at {where}"):
        PreprocessingSpec(**values)


def test_a_spec_round_trips_and_later_optional_blocks_are_read_past():
    written = json.loads(SPEC.to_json())
    assert PreprocessingSpec.from_json(json.dumps(written)) == SPEC
    later = {**written, "some_later_block": {"added": "later"}}  # a later optional property
    assert PreprocessingSpec.from_json(json.dumps(later)) == SPEC
    with pytest.raises(ValueError, match="format_version"):
        PreprocessingSpec.from_json(json.dumps({**written, "format_version": 9}))
