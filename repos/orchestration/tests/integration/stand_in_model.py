"""A stand-in for the served model, computed by the test itself from real photos.

The API's novelty score comes from the trained network (issue 17, ml-training); the
drift check only reads numbers in the log. So the tests of plants_monitor score real
photos with this small, fully known stand-in, and write its answers as prediction-log
records in the contract's format: the records are SYNTHETIC (not written by the API),
the photos are real.

- features: a 4x4x4 RGB colour histogram of the photo shrunk to 32x32;
- novelty score: the mean L1 distance to the 5 nearest reference photos' histograms;
- threshold: the 98th percentile of the reference photos' own scores (leave-one-out),
  so the reference false-alarm rate is 2 %;
- label and confidence: yellow-ness (red + green - 2 blue) against green-ness, through
  a logistic: "dandelion" or "grass".
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

NEIGHBOURS = 5
LABELS = ("dandelion", "grass")


def features(path: Path) -> tuple[list[float], float]:
    """(colour histogram, yellow-minus-green score) of one photo."""
    with Image.open(path) as image:
        small = image.convert("RGB").resize((32, 32))
    raw = small.tobytes()  # RGB, 3 bytes a pixel
    pixels = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]
    histogram = [0.0] * 64
    yellow = 0.0
    for r, g, b in pixels:
        histogram[(r // 64) * 16 + (g // 64) * 4 + b // 64] += 1 / len(pixels)
        yellow += ((r + g - 2 * b) - 2.4 * (g - r)) / 255 / len(pixels)
    return histogram, yellow


def _distance(a: list[float], b: list[float]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


@dataclass
class StandInModel:
    reference: list[list[float]]
    threshold: float

    def novelty(self, histogram: list[float], skip_self: bool = False) -> float:
        distances = sorted(_distance(histogram, ref) for ref in self.reference)
        if skip_self:
            distances = distances[1:]
        return sum(distances[:NEIGHBOURS]) / NEIGHBOURS

    @classmethod
    def fit(cls, paths: list[Path]) -> tuple[StandInModel, dict]:
        """The model and its reference.json (format_version 1) from reference photos."""
        feats = [features(p) for p in paths]
        model = cls([h for h, _ in feats], threshold=0.0)
        scores = sorted(model.novelty(h, skip_self=True) for h, _ in feats)
        model.threshold = scores[math.ceil(0.98 * len(scores)) - 1]
        answers = [model.answer(h, y, score) for (h, y), score in zip(feats, scores, strict=True)]
        labels = [a[0] for a in answers]
        reference = {
            "format_version": 1,
            "labels": list(LABELS),
            "threshold": model.threshold,
            "false_alarm_rate": sum(s > model.threshold for s in scores) / len(scores),
            "label_mix": {label: labels.count(label) / len(labels) for label in LABELS},
            "novelty_scores": scores,
            "confidences": [a[1] for a in answers],
        }
        return model, reference

    def answer(self, histogram: list[float], yellow: float, score: float) -> tuple[str, float]:
        p_dandelion = 1 / (1 + math.exp(-8 * yellow))
        label = "dandelion" if p_dandelion >= 0.5 else "grass"
        return label, max(p_dandelion, 1 - p_dandelion)

    def record(self, path: Path, model_name: str, model_version: str) -> dict:
        """One prediction-log record for a photo, as the API would write it."""
        histogram, yellow = features(path)
        score = self.novelty(histogram)
        label, confidence = self.answer(histogram, yellow, score)
        data = path.read_bytes()
        return {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "request_id": hashlib.sha1(path.name.encode()).hexdigest()[:16],
            "model_name": model_name,
            "model_version": model_version,
            "label": label,
            "confidence": confidence,
            "probabilities": {
                label: confidence,
                next(other for other in LABELS if other != label): 1 - confidence,
            },
            "novelty_score": score,
            "out_of_distribution": score > self.threshold,
            "image_sha256": hashlib.sha256(data).hexdigest(),
            "latency_ms": 1.0,
        }
