"""The field check: photos that are never trained on, scored for every candidate and
compared pair by pair with the champion by the promotion gate.

The folder (`PLANTOPS_FIELD_CHECK_DIR`, `<label>/*.jpg`) is not a dataset version: it
lives beside the checkout, is read as it is (no label review: its labels are the
sources'), and each photo is known by the sha256 of its bytes. A run scores it with the
exported ONNX model, exactly as the API will, and logs `model/field_check_predictions.csv`
with the model version's files, so a later challenger can be paired with this champion
photo by photo.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plantops_ml_training.dataset import Dataset, DatasetError, Example, sha256_of
from plantops_ml_training.evaluate import Predictions

PREDICTIONS_CSV = "field_check_predictions.csv"
SKIPPED = "skipped"


@dataclass(frozen=True)
class FieldCheck:
    examples: list[Example]  # split "field", key `<label>/<file name>`
    paths: dict[str, Path]  # sha256 -> photo

    @property
    def image_paths(self) -> list[Path]:
        return [self.paths[e.sha256] for e in self.examples]


def load_field_check(folder: Path) -> FieldCheck:
    """Every `<folder>/<label>/*.jpg`; a folder that is set but unusable is an error."""
    if not folder.is_dir():
        raise DatasetError(
            f"PLANTOPS_FIELD_CHECK_DIR={folder} is not a folder of <label>/*.jpg photos "
            "(set it empty to train without a field check)."
        )
    examples, paths = [], {}
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(label_dir.glob("*.jpg")):
            sha = sha256_of(path)
            paths[sha] = path
            examples.append(Example(f"{label_dir.name}/{path.name}", label_dir.name, "field", sha))
    if not examples:
        raise DatasetError(f"Field-check folder {folder} has no <label>/*.jpg photos.")
    return FieldCheck(examples, paths)


def check_never_trained_on(dataset: Dataset, field_check: FieldCheck) -> None:
    """Refuse a dataset whose training part holds a field-check photo (same sha256)."""
    training = {e.sha256 for e in dataset.examples if e.split in ("train", "val")}
    leaked = sorted(e.key for e in field_check.examples if e.sha256 in training)
    if leaked:
        raise DatasetError(
            f"Dataset {dataset.version} trains on {len(leaked)} field-check photo(s) "
            f"({', '.join(leaked[:5])}): the field check must stay unseen. Remove them "
            "from the training data or from the field-check folder."
        )


def correct_by_sha256(predictions: Predictions) -> dict[str, bool]:
    """Whether each photo (by sha256) was classified right."""
    right = predictions.predicted == predictions.targets
    return {e.sha256: bool(ok) for e, ok in zip(predictions.examples, right, strict=True)}


def read_correct_by_sha256(text: str) -> dict[str, bool]:
    """`correct_by_sha256` from a logged field_check_predictions.csv."""
    rows = list(csv.DictReader(io.StringIO(text)))
    result = {}
    for row in rows:
        labels = [name.removeprefix("prob_") for name in row if name.startswith("prob_")]
        probs = np.array([float(row[f"prob_{label}"]) for label in labels])
        result[row["sha256"]] = labels[int(probs.argmax())] == row["label"]
    return result


@dataclass(frozen=True)
class PairedComparison:
    """Field-check photos both models saw, and where they disagree on being right."""

    photos: int
    champion_only: int  # champion right, challenger wrong
    challenger_only: int  # challenger right, champion wrong

    def worse_beyond(self, tolerance: int) -> bool:
        return self.champion_only - self.challenger_only > tolerance

    def describe(self, tolerance: int) -> str:
        return (
            f"field check on {self.photos} photos: champion right and challenger wrong on "
            f"{self.champion_only}, challenger right and champion wrong on "
            f"{self.challenger_only} (tolerance {tolerance})"
        )


def compare(challenger: dict[str, bool], champion: dict[str, bool]) -> PairedComparison:
    """Pair two models' field-check results on the photos both were scored on."""
    shared = challenger.keys() & champion.keys()
    return PairedComparison(
        len(shared),
        sum(champion[s] and not challenger[s] for s in shared),
        sum(challenger[s] and not champion[s] for s in shared),
    )
