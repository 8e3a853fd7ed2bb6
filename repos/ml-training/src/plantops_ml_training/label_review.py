"""Reviewed corrections to the labels of a dataset: the documented rule for mislabelled images.

The labels come from web-search thumbnails and some are wrong in a way no recipe can
learn around. A person reviewed the images that out-of-fold predictions contradict
most (docs: "Label review" in the README) and wrote a decision per image into a CSV
file keyed by the image's sha256 (its identity in `raw/`, `fmt/` and the manifests):

- `exclude`: not a picture of a plant (a product package, a diagram or infographic),
  or a near-duplicate of another image (it would leak between splits);
- `relabel`: the picture clearly shows another label (a lawn full of dandelion
  flowers filed under grass).

Nothing in S3 or MySQL changes: the review applies when a dataset is read, to the
**training part only** (the `train` and `val` splits). The review was guided by a
model's disagreements, so applying it to test photos would clean them on one side only
and flatter the test figures: test photos keep their original labels, always. Every
run logs the file it used.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from plantops_ml_training.dataset import Dataset, DatasetError, validate

COLUMNS = ("sha256", "action", "label", "key", "reason")
ACTIONS = ("exclude", "relabel")


@dataclass(frozen=True)
class Decision:
    sha256: str
    action: str
    label: str
    key: str
    reason: str


@dataclass(frozen=True)
class LabelReview:
    source: str
    digest: str
    decisions: dict[str, Decision]

    def apply(self, dataset: Dataset) -> tuple[Dataset, dict[str, int]]:
        """The dataset without excluded training images and with relabelled ones (test
        images untouched: see the module docstring); counts of each."""
        examples, applied = [], Counter[str]()
        for example in dataset.examples:
            decision = self.decisions.get(example.sha256)
            # A test image, not reviewed, or it already carries the reviewed label.
            if example.split == "test" or decision is None or decision.label == example.label:
                examples.append(example)
                continue
            applied[decision.action] += 1
            if decision.action == "relabel":
                examples.append(replace(example, label=decision.label))
        counts = {action: applied[action] for action in ACTIONS}
        return replace(dataset, examples=tuple(examples)), counts


def read_label_review(path: Path) -> LabelReview:
    """Parse a review file (`#` lines are comments), refusing rows that cannot be applied."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"Label review file {path} cannot be read: {exc}") from exc
    rows = csv.DictReader(
        (line for line in io.StringIO(text) if not line.lstrip().startswith("#")),
        skipinitialspace=True,
    )
    if tuple(rows.fieldnames or ()) != COLUMNS:
        raise DatasetError(f"Label review {path}: columns must be {list(COLUMNS)}")
    decisions = {}
    for row in rows:
        decision = Decision(**{name: (row[name] or "").strip() for name in COLUMNS})
        if decision.action not in ACTIONS or len(decision.sha256) != 64:
            raise DatasetError(f"Label review {path}: bad row {row}")
        if decision.action == "relabel" and not decision.label:
            raise DatasetError(f"Label review {path}: relabel without a label in {row}")
        decisions[decision.sha256] = decision
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LabelReview(str(path), digest, decisions)


def apply_label_review(dataset: Dataset, review_file: Path | None) -> tuple[Dataset, dict]:
    """The recipe's review applied and the dataset checked again; what was done, for MLflow.

    A dataset the review leaves unusable (a split emptied) is refused like any other.
    """
    if review_file is None:
        return dataset, {"label_review": None}
    review = read_label_review(review_file)
    reviewed, counts = review.apply(dataset)
    summary = {
        "label_review": review.source,
        "label_review_sha256": review.digest,
        "label_review_excluded": counts["exclude"],
        "label_review_relabelled": counts["relabel"],
    }
    return validate(reviewed), summary
