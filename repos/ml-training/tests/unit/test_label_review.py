"""The label review: reading the file, applying it, and the shipped review itself."""

import hashlib

import pytest

from plantops_ml_training.config import load_config
from plantops_ml_training.dataset import Dataset, DatasetError, Example
from plantops_ml_training.label_review import apply_label_review, read_label_review

pytestmark = pytest.mark.unit

HEADER = "sha256,action,label,key,reason\n"
A, B, C = "a" * 64, "b" * 64, "c" * 64


def dataset() -> Dataset:
    rows = [
        ("grass", "train", A),
        ("grass", "test", B),
        ("grass", "val", C),
        ("dandelion", "train", "d" * 64),
        ("dandelion", "val", "e" * 64),
        ("dandelion", "test", "f" * 64),
        ("grass", "test", "0" * 64),
        ("grass", "train", "1" * 64),
    ]
    return Dataset("v1", tuple(Example(f"k{i}", *row) for i, row in enumerate(rows)))


def write(tmp_path, *rows: str):
    path = tmp_path / "review.csv"
    path.write_text("# a comment line\n" + HEADER + "".join(f"{r}\n" for r in rows))
    return path


def test_excluded_images_leave_and_relabelled_ones_change_label(tmp_path):
    path = write(tmp_path, f"{A},exclude,,grass/1.jpg,a diagram", f"{C},relabel,dandelion,g/2,x")
    reviewed, summary = apply_label_review(dataset(), path)
    by_sha = {e.sha256: e for e in reviewed.examples}
    assert A not in by_sha
    assert by_sha[C].label == "dandelion" and by_sha[C].split == "val"
    assert len(reviewed.examples) == len(dataset().examples) - 1
    assert summary["label_review_excluded"] == 1
    assert summary["label_review_relabelled"] == 1
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["label_review_sha256"] == expected


def test_no_review_file_keeps_the_dataset():
    reviewed, summary = apply_label_review(dataset(), None)
    assert reviewed == dataset()
    assert summary == {"label_review": None}


@pytest.mark.parametrize(
    "row",
    [f"{A},drop,,k,why", f"{A},relabel,,k,no label", "abc,exclude,,k,short sha"],
)
def test_rows_that_cannot_be_applied_are_refused(tmp_path, row):
    with pytest.raises(DatasetError, match="review"):
        read_label_review(write(tmp_path, row))


def test_a_review_that_empties_a_split_is_refused(tmp_path):
    path = write(tmp_path, f"{C},exclude,,k,x", f"{'e' * 64},exclude,,k,y")
    with pytest.raises(DatasetError, match="'val'"):
        apply_label_review(dataset(), path)


def test_the_shipped_review_is_readable_and_every_change_has_a_reason():
    config = load_config()
    assert config.label_review is not None and config.label_review.is_file()
    review = read_label_review(config.label_review)
    assert review.decisions
    assert all(d.reason and d.key for d in review.decisions.values())


def test_test_photos_keep_their_original_labels(tmp_path):
    """The review was guided by a model: applied to test photos it would flatter them."""
    path = write(tmp_path, f"{B},relabel,dandelion,g/2,x", f"{'0' * 64},exclude,,g/3,y")
    reviewed, summary = apply_label_review(dataset(), path)
    assert [e for e in reviewed.examples if e.split == "test"] == dataset().split("test")
    assert summary["label_review_excluded"] == summary["label_review_relabelled"] == 0


def test_the_shipped_review_does_not_call_two_different_lawns_duplicates():
    review = read_label_review(load_config().label_review)
    assert "grass/00000079.jpg" not in {d.key for d in review.decisions.values()}
