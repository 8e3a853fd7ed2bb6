"""The field check: reading the folder, keeping it out of training, the setting."""

import shutil

import pytest

from plantops_ml_training import config
from plantops_ml_training.config import Settings
from plantops_ml_training.dataset import Dataset, DatasetError, Example, sha256_of
from plantops_ml_training.field_check import (
    check_never_trained_on,
    load_field_check,
    read_correct_by_sha256,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def field_folder(tmp_path, images_dir):
    for label, index in [("dandelion", 190), ("dandelion", 191), ("grass", 190)]:
        (tmp_path / label).mkdir(exist_ok=True)
        shutil.copy(images_dir / label / f"{index:08d}.jpg", tmp_path / label / f"{index}.jpg")
    return tmp_path


def test_every_photo_is_read_with_its_folder_label_and_sha256(field_folder):
    field = load_field_check(field_folder)
    assert [e.key for e in field.examples] == [
        "dandelion/190.jpg",
        "dandelion/191.jpg",
        "grass/190.jpg",
    ]
    assert all(sha256_of(field.paths[e.sha256]) == e.sha256 for e in field.examples)


def test_a_set_but_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="PLANTOPS_FIELD_CHECK_DIR"):
        load_field_check(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"no <label>/\*\.jpg"):
        load_field_check(tmp_path)


def test_a_dataset_that_would_train_on_a_field_check_photo_is_refused(field_folder):
    field = load_field_check(field_folder)
    leaked = field.examples[2].sha256
    rows = [("dandelion", "train", "a" * 64), ("grass", "val", leaked), ("grass", "test", "b" * 64)]
    dataset = Dataset("v1", tuple(Example(f"k{i}", *row) for i, row in enumerate(rows)))
    with pytest.raises(DatasetError, match=r"grass/190\.jpg"):
        check_never_trained_on(dataset, field)
    # On the test split it is not trained on: allowed.
    tested = Dataset(
        "v2",
        tuple(
            e if e.sha256 != leaked else Example(e.key, e.label, "test", leaked)
            for e in dataset.examples
        ),
    )
    check_never_trained_on(tested, field)


def test_no_field_check_photo_is_among_the_photos_training_manifests_are_built_from(images_dir):
    """The 400 greenr-airflow photos are what `make demo` ingests into every manifest."""
    # The setting (PLANTOPS_FIELD_CHECK_DIR, else the folder beside the checkout), as
    # training reads it: never a path of its own.
    folder = Settings().field_check_dir
    if folder is None or not folder.is_dir():
        pytest.fail(f"The field-check photos are missing ({folder}); set PLANTOPS_FIELD_CHECK_DIR.")
    field = {e.sha256 for e in load_field_check(folder).examples}
    training = {sha256_of(p) for p in images_dir.glob("*/*.jpg")}
    assert len(field) == 263 and len(training) == 400
    assert not field & training


def test_logged_predictions_give_right_or_wrong_per_photo():
    text = "key,sha256,label,prob_dandelion,prob_grass\nk1,aa,grass,0.2,0.8\nk2,bb,grass,0.7,0.3\n"
    assert read_correct_by_sha256(text) == {"aa": True, "bb": False}


def test_the_setting_defaults_to_the_checkout_folder_and_empty_turns_it_off(monkeypatch, tmp_path):
    # The folder beside the checkout, when there is one: pointed at a folder that exists,
    # then at one that does not (a clone in a temporary folder has no shared/ beside it).
    monkeypatch.delenv("PLANTOPS_FIELD_CHECK_DIR", raising=False)
    monkeypatch.setattr(config, "CHECKOUT_FIELD_CHECK_DIR", tmp_path)
    assert Settings().field_check_dir == tmp_path
    monkeypatch.setattr(config, "CHECKOUT_FIELD_CHECK_DIR", tmp_path / "missing")
    assert Settings().field_check_dir is None
    monkeypatch.setenv("PLANTOPS_FIELD_CHECK_DIR", "")
    assert Settings().field_check_dir is None
    monkeypatch.setenv("PLANTOPS_FIELD_CHECK_DIR", "/somewhere/else")
    assert str(Settings().field_check_dir) == "/somewhere/else"
