"""The agg/ layer: a content-addressed dataset version with a stable train/val/test split."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from plantops_orchestration.contract_files import check_manifest_row, check_stats, manifest_columns
from plantops_orchestration.layout import fmt_key

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = manifest_columns()  # contracts/manifest.schema.json


def split_of(sha256: str, train: float, val: float) -> str:
    """The split of one image, from its content hash alone.

    The hash is uniform, so each label is split train/val/test in the given
    proportions (stratified in expectation), and an image never changes split
    when other images are added.
    """
    position = int(sha256[:16], 16) / 16**16
    if position < train:
        return "train"
    if position < train + val:
        return "val"
    return "test"


@dataclass(frozen=True)
class Dataset:
    version: str
    manifest_csv: bytes
    stats: dict


def build_dataset(images: Iterable[tuple[str, str]], train: float, val: float) -> Dataset:
    """Manifest, stats and version of a set of (label, sha256) images.

    The version is a hash of the manifest, so the same images (and split
    fractions) always give the same version, and any change gives a new one.
    """
    rows = sorted(
        (fmt_key(label, sha), label, split_of(sha, train, val), sha) for label, sha in set(images)
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    manifest = out.getvalue().encode()
    version = "ds-" + hashlib.sha256(manifest).hexdigest()[:12]
    stats = stats_of(version, rows, train, val)
    # Our own contract, checked before anything is stored: ml-training refuses the rest.
    for row in rows:
        check_manifest_row(dict(zip(MANIFEST_COLUMNS, row, strict=True)))
    check_stats(stats)
    return Dataset(version, manifest, stats)


def stats_of(version: str, rows: list[tuple[str, str, str, str]], train: float, val: float) -> dict:
    per_label = Counter((label, split) for _, label, split, _ in rows)
    labels = sorted({label for _, label, _, _ in rows})
    return {
        "dataset_version": version,
        "images": len(rows),
        "labels": labels,
        "split_fractions": {"train": train, "val": val, "test": round(1 - train - val, 6)},
        "counts": {
            label: {split: per_label[(label, split)] for split in SPLITS} for label in labels
        },
        "splits": {split: sum(per_label[(label, split)] for label in labels) for split in SPLITS},
    }
