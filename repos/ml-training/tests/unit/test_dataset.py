"""Manifests, dataset checks, the local-folder split and the cache's integrity check."""

import pytest

from plantops_ml_training.dataset import (
    Dataset,
    DatasetError,
    Example,
    ImageCache,
    folder_dataset,
    folder_fold,
    parse_manifest,
    validate,
)

pytestmark = pytest.mark.unit

SHA = "a" * 64


def manifest(*rows: str) -> str:
    return "key,label,split,sha256\n" + "".join(f"{r}\n" for r in rows)


def test_manifest_rows_become_examples_and_labels_are_sorted():
    dataset = parse_manifest(
        manifest(f"fmt/grass/{SHA}.jpg,grass,train,{SHA}", f"fmt/d/{SHA}.jpg,dandelion,test,{SHA}"),
        "v1",
    )
    assert dataset.labels == ["dandelion", "grass"]
    assert dataset.split("test")[0].label == "dandelion"


def test_manifest_with_wrong_columns_is_refused():
    with pytest.raises(DatasetError, match="columns"):
        parse_manifest("key,label\nx,y\n", "v1")


def test_manifest_with_an_unknown_split_names_the_line():
    with pytest.raises(DatasetError, match="line 2"):
        parse_manifest(manifest(f"k,grass,holdout,{SHA}"), "v1")


def _dataset(*rows: tuple[str, str]) -> Dataset:
    return Dataset(
        "v1", tuple(Example(f"k{i}", label, split, SHA) for i, (label, split) in enumerate(rows))
    )


def test_a_single_label_is_refused():
    single = _dataset(("grass", "train"), ("grass", "val"), ("grass", "test"))
    with pytest.raises(DatasetError, match="at least two"):
        validate(single)


def test_an_empty_split_is_refused_and_named():
    no_val = _dataset(("grass", "train"), ("dandelion", "train"), ("grass", "test"))
    with pytest.raises(DatasetError, match="'val'"):
        validate(no_val)


def test_a_label_without_training_images_is_refused():
    rows = [("grass", "train"), ("grass", "val"), ("dandelion", "val"), ("dandelion", "test")]
    with pytest.raises(DatasetError, match="dandelion"):
        validate(_dataset(*rows))


def test_folder_split_is_stratified_and_depends_on_the_seed(images_dir):
    dataset, paths = folder_dataset(images_dir, seed=0)
    counts = dataset.counts()
    assert counts["test"] == {"dandelion": 40, "grass": 40}
    assert counts["val"] == {"dandelion": 20, "grass": 20}
    assert all(paths[e.sha256].is_file() for e in dataset.examples)
    other, _ = folder_dataset(images_dir, seed=1)
    assert {e.key for e in other.split("test")} != {e.key for e in dataset.split("test")}


def _test_keys(images_dir, split_seed: int) -> list[set[str]]:
    return [
        {e.key for e in folder_fold(images_dir, fold, 5, split_seed=split_seed)[0].split("test")}
        for fold in range(5)
    ]


def test_every_repeat_of_the_cross_validation_tests_each_photo_once(images_dir):
    every_photo = {f"{p.parent.name}/{p.name}" for p in images_dir.glob("*/*.jpg")}
    first, second = _test_keys(images_dir, 0), _test_keys(images_dir, 1)
    for repeat in (first, second):
        assert set().union(*repeat) == every_photo
        assert sum(map(len, repeat)) == len(every_photo)
    # Another split seed is another cross-validation, not the same folds renumbered.
    assert {frozenset(k) for k in first} != {frozenset(k) for k in second}
    assert _test_keys(images_dir, 0) == first


def test_cache_rejects_a_corrupt_file(tmp_path):
    cache = ImageCache(tmp_path)
    cache._store(SHA, b"jpeg bytes")  # the manifest's sha names the image, not these bytes
    assert cache.is_valid(SHA)
    cache.path_for(SHA).write_bytes(b"jpeg")  # truncated
    assert not cache.is_valid(SHA)
