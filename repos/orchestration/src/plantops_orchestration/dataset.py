"""The agg/ layer: a content-addressed dataset version with a stable train/val/test split.

A label with too few accepted photos is held back: left out of the manifest and listed in
stats.json, until it has `min_label_images` photos and at least one of them falls in the
train split. Training refuses a dataset in which a label has no training photo, so one
accepted photo of a new label (a visitor's proposal, issue 17) would otherwise stop every
retraining whenever its hash put it in val or test (3 times in 10).
"""

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


def build_dataset(
    images: Iterable[tuple[str, str]], train: float, val: float, min_label_images: int = 1
) -> Dataset:
    """Manifest, stats and version of a set of (label, sha256) images.

    The version is a hash of the manifest, so the same images (and split
    fractions) always give the same version, and any change gives a new one. Held-back
    labels are not in the manifest, so a new label's first photos change no version
    (and start no training) until the label is included.
    """
    rows = sorted(
        (fmt_key(label, sha), label, split_of(sha, train, val), sha) for label, sha in set(images)
    )
    held_back = labels_held_back(rows, min_label_images)
    rows = [row for row in rows if row[1] not in held_back]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(rows)
    manifest = out.getvalue().encode()
    version = "ds-" + hashlib.sha256(manifest).hexdigest()[:12]
    stats = stats_of(version, rows, train, val)
    stats |= {"min_label_images": min_label_images, "held_back": held_back}
    # Our own contract, checked before anything is stored: ml-training refuses the rest.
    for row in rows:
        check_manifest_row(dict(zip(MANIFEST_COLUMNS, row, strict=True)))
    check_stats(stats)
    return Dataset(version, manifest, stats)


def labels_held_back(
    rows: list[tuple[str, str, str, str]], min_label_images: int
) -> dict[str, dict]:
    """`{label: {"images": n, "train": n, "reason": ...}}` for each label left out."""
    per_label = Counter(label for _, label, _, _ in rows)
    in_train = Counter(label for _, label, split, _ in rows if split == "train")
    held_back = {}
    for label, count in sorted(per_label.items()):
        if count < min_label_images:
            reason = f"{count} accepted photo(s), fewer than the {min_label_images} required"
        elif not in_train[label]:
            reason = "no photo in the train split yet"
        else:
            continue
        held_back[label] = {"images": count, "train": in_train[label], "reason": reason}
    return held_back


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
