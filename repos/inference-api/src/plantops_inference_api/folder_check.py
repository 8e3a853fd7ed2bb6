"""How a running API does on a folder of labelled photos (`<label>/<photo>`), as a user sees it.

Each photo is sent to `POST /v1/predict` exactly as a client would send it, so the
figures are those of the served model with the served preprocessing (the field check of
docs/BENCHMARKS.md is measured this way). Sub-folders whose name is not one of the served
labels are counted apart and not scored: the model has no right answer for them, but
how many of their photos the model calls out of distribution is reported for every
sub-folder (`out_of_distribution`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Answer:
    label: str  # the folder's label
    predicted: str
    confidence: float


def expected_calibration_error(answers: Iterable[Answer], bins: int = CALIBRATION_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by size."""
    binned: dict[int, list[Answer]] = {}
    for answer in answers:
        binned.setdefault(min(int(answer.confidence * bins), bins - 1), []).append(answer)
    total = sum(len(group) for group in binned.values())
    gap = 0.0
    for group in binned.values():
        accuracy = sum(a.predicted == a.label for a in group) / len(group)
        confidence = sum(a.confidence for a in group) / len(group)
        gap += len(group) * abs(accuracy - confidence)
    return gap / total if total else 0.0


def summarise(answers: list[Answer], labels: list[str]) -> dict[str, object]:
    """Per-label recall, balanced accuracy (mean recall over labels with photos), ECE."""
    recall: dict[str, float] = {}
    counts: dict[str, int] = {}
    for label in labels:
        own = [a for a in answers if a.label == label]
        if own:
            counts[label] = len(own)
            recall[label] = round(sum(a.predicted == label for a in own) / len(own), 4)
    confusion = {
        label: {p: sum(a.label == label and a.predicted == p for a in answers) for p in labels}
        for label in counts
    }
    return {
        "images": len(answers),
        "images_per_label": counts,
        "recall": recall,
        "balanced_accuracy": round(sum(recall.values()) / len(recall), 4) if recall else None,
        "ece": round(expected_calibration_error(answers), 4),
        "confusion": confusion,
    }


def photos_by_label(folder: Path) -> dict[str, list[Path]]:
    return {
        sub.name: sorted(p for p in sub.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
        for sub in sorted(folder.iterdir())
        if sub.is_dir()
    }


def check_folder(api_url: str, folder: Path) -> dict[str, object]:
    """Send every photo under `folder` to the API; the figures as one JSON-ready dict."""
    with httpx.Client(base_url=api_url, timeout=60) as api:
        served = api.get("/v1/model").raise_for_status().json()
        labels: list[str] = served["labels"]
        answers: list[Answer] = []
        not_scored: dict[str, int] = {}
        # Share of each sub-folder's photos the model called out of distribution (null
        # for a model without a novelty reference): sub-folders of other labels are sent
        # too, for this figure only.
        flagged: dict[str, float | None] = {}
        for label, photos in photos_by_label(folder).items():
            if label not in labels:
                not_scored[label] = len(photos)
            novel: list[bool | None] = []
            for photo in photos:
                reply = api.post("/v1/predict", files={"file": (photo.name, photo.read_bytes())})
                body = reply.raise_for_status().json()
                novel.append(body.get("out_of_distribution"))
                if label in labels:
                    answers.append(Answer(label, body["label"], float(body["confidence"])))
            known = [n for n in novel if n is not None]
            flagged[label] = round(sum(known) / len(known), 4) if known and photos else None
    return {
        "folder": str(folder),
        "model": f"{served['name']}@{served.get('alias') or ''}=v{served['version']}",
        **summarise(answers, labels),
        "not_scored": not_scored,
        "out_of_distribution": flagged,
    }
