"""Dataset versions from S3 (`agg/<version>/manifest.csv`) and the local image cache.

A dataset is a list of labelled images split into train/val/test. It is checked
(at least two labels, no empty split) before any image is downloaded. Images are
cached by sha256, so a second run downloads nothing; every cached file is hashed
again before use and a corrupt one is fetched anew.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from minio import Minio
from minio.error import S3Error
from PIL import Image

from plantops_ml_training.contract_files import MANIFEST_SCHEMA, first_problem, manifest_columns

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = manifest_columns()  # contracts/vendored/orchestration/manifest.schema.json


class DatasetError(Exception):
    """The dataset cannot be used for training; the message says why and what to do."""


@dataclass(frozen=True)
class Example:
    """One labelled image of a dataset version."""

    key: str
    label: str
    split: str
    sha256: str


@dataclass(frozen=True)
class Dataset:
    version: str
    examples: tuple[Example, ...]

    @property
    def labels(self) -> list[str]:
        """Label order of the model's outputs: sorted, so it never depends on row order."""
        return sorted({e.label for e in self.examples})

    def split(self, name: str) -> list[Example]:
        return [e for e in self.examples if e.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """`{split: {label: n}}`, for logging and error messages."""
        return {s: dict(Counter(e.label for e in self.split(s))) for s in SPLITS}


def validate(dataset: Dataset) -> Dataset:
    """Refuse a dataset training cannot learn from or evaluate on."""
    labels = dataset.labels
    if len(labels) < 2:
        raise DatasetError(
            f"Dataset {dataset.version} has {len(labels)} label(s) {labels}: a classifier "
            "needs at least two. Ingest images of another label first."
        )
    counts = dataset.counts()
    for split in SPLITS:
        if not counts[split]:
            raise DatasetError(
                f"Dataset {dataset.version} has no images in its {split!r} split. "
                "Re-run the ingestion to build a version with train, val and test images."
            )
    missing = [label for label in labels if label not in counts["train"]]
    if missing:
        raise DatasetError(
            f"Dataset {dataset.version}: label(s) {missing} have no training images."
        )
    return dataset


def parse_manifest(text: str, version: str) -> Dataset:
    """Parse `manifest.csv` (`key,label,split,sha256`), refusing malformed rows."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
        raise DatasetError(
            f"Manifest of dataset {version} has columns {reader.fieldnames}, "
            f"expected {list(MANIFEST_COLUMNS)}."
        )
    examples = []
    for line, row in enumerate(reader, start=2):
        # The orchestration's contract (vendored): the same rule its writer checks.
        problem = first_problem(MANIFEST_SCHEMA, row, "manifest_row")
        if problem is not None:
            raise DatasetError(
                f"Manifest of dataset {version}, line {line}: bad row {row} ({problem}; "
                f"split must be one of {SPLITS}, sha256 64 lowercase hex digits)."
            )
        examples.append(Example(row["key"], row["label"], row["split"], row["sha256"]))
    return Dataset(version, tuple(examples))


def _read_object(client: Minio, bucket: str, key: str) -> bytes | None:
    try:
        response = client.get_object(bucket, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject"):
            return None
        raise
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def resolve_version(client: Minio, bucket: str, version: str) -> str:
    """`latest` becomes the version named in `agg/latest.json`; others pass through."""
    if version != "latest":
        return version
    body = _read_object(client, bucket, "agg/latest.json")
    if body is None:
        raise DatasetError(
            f"s3://{bucket}/agg/latest.json does not exist: no dataset has been published "
            "yet. Run the ingestion (DAG plants_ingest) first, or pass --dataset-version."
        )
    try:
        return str(json.loads(body)["dataset_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f's3://{bucket}/agg/latest.json is not {{"dataset_version": "..."}}'
        ) from exc


def load_dataset(client: Minio, bucket: str, version: str) -> Dataset:
    """Resolve, read and validate a dataset version from S3."""
    version = resolve_version(client, bucket, version)
    body = _read_object(client, bucket, f"agg/{version}/manifest.csv")
    if body is None:
        raise DatasetError(
            f"Unknown dataset version {version!r}: s3://{bucket}/agg/{version}/manifest.csv "
            "does not exist. List the versions with `plantops-train datasets`."
        )
    return validate(parse_manifest(body.decode("utf-8"), version))


def list_versions(client: Minio, bucket: str) -> list[str]:
    prefixes = client.list_objects(bucket, prefix="agg/", recursive=False)
    return sorted(o.object_name.removeprefix("agg/").strip("/") for o in prefixes if o.is_dir)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ImageCache:
    """`fmt/` images on local disk, one per image identity.

    The manifest's `sha256` is the hash of the image *as fetched* (the raw bytes), so
    it names an image but is not the hash of the `fmt/` bytes. Each cached file
    `<root>/<sha[:2]>/<sha>.jpg` therefore has a sidecar `<sha>.jpg.sha256` with the
    hash of the bytes actually stored, written when it was downloaded; a file that no
    longer matches its sidecar (truncated, edited) is downloaded again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def _sidecar(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.jpg.sha256"

    def is_valid(self, sha256: str) -> bool:
        path, sidecar = self.path_for(sha256), self._sidecar(sha256)
        return path.is_file() and sidecar.is_file() and sha256_of(path) == sidecar.read_text()

    def fetch(self, client: Minio, bucket: str, examples: Iterable[Example]) -> dict[str, Path]:
        """Make sure every example's image is cached and intact; return `{sha256: path}`.

        A download that S3's checksum (ETag) contradicts, or that is not a readable
        image, is an error naming the key.
        """
        paths = {}
        for example in examples:
            if not self.is_valid(example.sha256):
                self._store(example.sha256, _download_image(client, bucket, example.key))
            paths[example.sha256] = self.path_for(example.sha256)
        return paths

    def _store(self, sha256: str, body: bytes) -> None:
        path = self.path_for(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        partial.write_bytes(body)
        partial.replace(path)  # atomic: a crash never leaves a half-written image
        self._sidecar(sha256).write_text(hashlib.sha256(body).hexdigest())


def _download_image(client: Minio, bucket: str, key: str) -> bytes:
    try:
        response = client.get_object(bucket, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchObject"):
            raise DatasetError(f"s3://{bucket}/{key} (in the manifest) does not exist.") from exc
        raise
    try:
        body, etag = response.read(), response.headers.get("ETag", "").strip('"')
    finally:
        response.close()
        response.release_conn()
    # A single-part upload's ETag is the MD5 of the object (multipart ones contain "-").
    if re.fullmatch(r"[0-9a-f]{32}", etag) and hashlib.md5(body).hexdigest() != etag:
        raise DatasetError(f"s3://{bucket}/{key}: download does not match its ETag; retry.")
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.verify()
    except (OSError, SyntaxError) as exc:  # PIL raises both for broken files
        raise DatasetError(
            f"s3://{bucket}/{key} is not a readable image ({exc}). Re-run the ingestion."
        ) from exc
    return body


def folder_dataset(
    folder: Path, seed: int, test_fraction: float = 0.2, val_fraction: float = 0.1
) -> tuple[Dataset, dict[str, Path]]:
    """A dataset from `<folder>/<label>/*.jpg` with a stratified random split.

    Used by the benchmark, which works from the shared image folder without S3.
    Returns the dataset and `{sha256: path}` like `ImageCache.fetch`.
    """
    rng = random.Random(seed)
    examples, paths = [], {}
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(label_dir.glob("*.jpg"))
        rng.shuffle(files)
        n_test = round(len(files) * test_fraction)
        n_val = round(len(files) * val_fraction)
        for index, path in enumerate(files):
            split = "test" if index < n_test else "val" if index < n_test + n_val else "train"
            sha = sha256_of(path)
            paths[sha] = path
            key = f"{label_dir.name}/{path.name}"
            examples.append(Example(key, label_dir.name, split, sha))
    return validate(Dataset(f"folder:{folder.name}:seed{seed}", tuple(examples))), paths


def folder_fold(
    folder: Path, fold: int, folds: int = 5, val_fraction: float = 0.1, split_seed: int = 0
) -> tuple[Dataset, dict[str, Path]]:
    """Fold `fold` of a stratified `folds`-fold cross-validation of `<folder>/<label>/*.jpg`.

    Each label's photos are shuffled once (seed `split_seed`, the same for every fold),
    fold `k`'s test photos are the k-th of `folds` equal chunks, so across the folds every
    photo is tested exactly once; `val_fraction` of each label (of all its photos) is
    taken from the rest for validation, seeded by the fold and `split_seed`. Another
    `split_seed` is another cross-validation of the same photos (a repeat); seed 0 is
    the one every figure before repeats existed was measured on. Returns the dataset and
    `{sha256: path}` like `ImageCache.fetch`.
    """
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} is not in 0..{folds - 1}")
    examples, paths = [], {}
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(label_dir.glob("*.jpg"))
        random.Random(split_seed).shuffle(files)
        chunks = [files[i::folds] for i in range(folds)]
        rest = [f for i, chunk in enumerate(chunks) if i != fold for f in chunk]
        random.Random(fold + 1000 * split_seed).shuffle(rest)  # split_seed 0: seeded by fold
        val = set(rest[: round(len(files) * val_fraction)])
        for path in files:
            split = "test" if path in chunks[fold] else "val" if path in val else "train"
            sha = sha256_of(path)
            paths[sha] = path
            examples.append(Example(f"{label_dir.name}/{path.name}", label_dir.name, split, sha))
    return validate(Dataset(f"folder:{folder.name}:fold{fold}of{folds}", tuple(examples))), paths
