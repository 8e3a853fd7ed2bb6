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
