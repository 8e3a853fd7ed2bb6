"""The agg/ dataset: stable hash-based split, content-derived version, stats."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from plantops_orchestration.dataset import build_dataset, split_of

pytestmark = pytest.mark.unit


def sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def images(labels: dict[str, range]) -> list[tuple[str, str]]:
    return [(label, sha(i)) for label, indices in labels.items() for i in indices]


def rows(dataset) -> list[dict]:
    return list(csv.DictReader(io.StringIO(dataset.manifest_csv.decode())))


def test_each_label_is_split_near_70_15_15():
    dataset = build_dataset(images({"a": range(3000), "b": range(3000, 6000)}), 0.70, 0.15)
    for label in ("a", "b"):
        counts = dataset.stats["counts"][label]
        assert abs(counts["train"] / 3000 - 0.70) < 0.03
        assert abs(counts["val"] / 3000 - 0.15) < 0.03
        assert abs(counts["test"] / 3000 - 0.15) < 0.03


def test_adding_images_or_labels_never_moves_an_image_to_another_split():
    before = rows(build_dataset(images({"a": range(200)}), 0.7, 0.15))
    after = {
        r["sha256"]: r["split"]
        for r in rows(
            build_dataset(images({"a": range(300), "new-label": range(1000, 1100)}), 0.7, 0.15)
        )
    }
    assert all(after[r["sha256"]] == r["split"] for r in before)


def test_version_depends_on_content_only():
    some = images({"a": range(50), "b": range(50, 100)})
    assert build_dataset(some, 0.7, 0.15).version == build_dataset(some[::-1], 0.7, 0.15).version
    relabelled = [("c" if i == 0 else label, s) for i, (label, s) in enumerate(some)]
    assert build_dataset(relabelled, 0.7, 0.15).version != build_dataset(some, 0.7, 0.15).version
    assert build_dataset(some, 0.6, 0.2).version != build_dataset(some, 0.7, 0.15).version


def test_manifest_has_the_contract_columns_and_fmt_keys():
    dataset = build_dataset([("grass", sha(1))], 0.7, 0.15)
    assert dataset.manifest_csv.decode().splitlines()[0] == "key,label,split,sha256"
    (row,) = rows(dataset)
    assert row["key"] == f"fmt/grass/{sha(1)}.jpg"
    assert row["split"] == split_of(sha(1), 0.7, 0.15)
    assert dataset.stats["images"] == 1 and dataset.stats["labels"] == ["grass"]


def test_by_default_every_label_is_kept_and_none_is_held_back():
    dataset = build_dataset([("grass", sha(1))], 0.7, 0.15)
    assert dataset.stats["held_back"] == {} and dataset.stats["min_label_images"] == 1


def test_a_one_photo_label_is_held_back_listed_in_stats_and_changes_no_version():
    known = images({"dandelion": range(40), "grass": range(40, 80)})
    without = build_dataset(known, 0.7, 0.15, min_label_images=10)
    with_one = build_dataset([*known, ("sweet-pea", sha(500))], 0.7, 0.15, min_label_images=10)

    assert with_one.version == without.version
    assert with_one.manifest_csv == without.manifest_csv
    assert "sweet-pea" not in with_one.stats["labels"]
    held = with_one.stats["held_back"]["sweet-pea"]
    assert held["images"] == 1
    assert held["reason"] == "1 accepted photo(s), fewer than the 10 required"
    assert with_one.stats["images"] == 80


def test_a_label_reaching_the_minimum_with_a_train_photo_is_included():
    new = [("sweet-pea", sha(i)) for i in range(500, 510)]
    dataset = build_dataset([*images({"grass": range(40)}), *new], 0.7, 0.15, min_label_images=10)
    assert dataset.stats["held_back"] == {}
    assert sum(dataset.stats["counts"]["sweet-pea"].values()) == 10


def test_a_label_with_enough_photos_but_none_to_train_on_is_held_back():
    # Photos whose hash puts them all in val or test: training would refuse the dataset.
    not_train = [s for s in (sha(i) for i in range(1000)) if split_of(s, 0.7, 0.15) != "train"]
    dataset = build_dataset(
        [*images({"grass": range(40)}), *(("moss", s) for s in not_train[:3])],
        0.7,
        0.15,
        min_label_images=3,
    )
    assert dataset.stats["held_back"]["moss"] == {
        "images": 3,
        "train": 0,
        "reason": "no photo in the train split yet",
    }
    assert "moss" not in dataset.manifest_csv.decode()


def test_when_every_label_is_held_back_the_manifest_is_empty():
    dataset = build_dataset(images({"grass": range(3)}), 0.7, 0.15, min_label_images=10)
    assert dataset.stats["images"] == 0 and list(dataset.stats["held_back"]) == ["grass"]
