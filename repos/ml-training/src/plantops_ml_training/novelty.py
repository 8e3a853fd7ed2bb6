"""Novelty: how unlike the training photos a photo is, and the threshold above which the
model says "this is neither label" (issue 17).

The score is computed from the exported model's second output, `embedding` (the pooled
body features the head sees), so the API needs only numpy: `knn_cosine` is one minus
the cosine similarity to the k-th nearest training view (the plain cosine of the pooled
features: `mean` is zeros; centring on the training mean was measured and lost, it no
longer flags blank, text or noise images, whose features sit near the mean). The bank
holds the first `novelty_bank_views` views of every training photo (the serving crop and
its mirror): 560 rows for the 400 photos' training part, about 0.5 ms of numpy per
prediction; all 8 views cost 7.5 ms (`make -C repos/inference-api bench-novelty`).

The threshold is chosen without any photo that is scored for a result: each training
photo is scored against the bank without its own views (leave one photo out), each
validation photo against the whole bank (as the API scores a new photo), and the
threshold is the score that `target_false_alarm_rate` of those photos exceed. The
false-alarm rate reported with the model is the one measured on the validation photos
alone. Why this method and these parameters: docs/BENCHMARKS.md, "Novelty"
(`make bench-novelty`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plantops_ml_training.contract_files import REFERENCE_SCHEMA, first_problem

METHOD_KNN_COSINE = "knn_cosine"
PARAMS_FILE = "novelty.npz"
EMBEDDING_NAME = "embedding"
REFERENCE_FILE = "reference.json"
DEFAULT_TARGET_FALSE_ALARM_RATE = 0.02
DEFAULT_K = 5  # make bench-novelty: the best leave-one-label-out AUROC
# Memory and time of the API's score grow with the bank: float16 halves the file and the
# similarities are rounded to ~1e-3, far below the gap between familiar and novel photos.
BANK_DTYPE = np.float16


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class KnnCosine:
    """The fitted score: centre, normalise, 1 - k-th largest cosine similarity to the bank."""

    mean: np.ndarray  # [D] float32, the training views' mean embedding
    bank: np.ndarray  # [M, D] unit rows, the training views (centred)
    k: int = DEFAULT_K

    @classmethod
    def fit(cls, views: np.ndarray, k: int = DEFAULT_K, centred: bool = False) -> KnnCosine:
        """`centred`: subtract the views' mean first (else `mean` is zeros: plain cosine)."""
        views = np.asarray(views, dtype=np.float32)
        mean = views.mean(axis=0) if centred else np.zeros(views.shape[1], np.float32)
        return cls(mean, _unit_rows(views - mean).astype(BANK_DTYPE), k)

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        query = _unit_rows(np.asarray(embeddings, dtype=np.float32) - self.mean)
        return query @ self.bank.astype(np.float32).T

    def scores(self, embeddings: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
        """Novelty of each row of `embeddings` `[N, D]`; `exclude` `[N, M]` (True: that bank
        row is not a neighbour of that photo, e.g. its own views) for leave-one-out."""
        sims = self.similarities(embeddings)
        if exclude is not None:
            sims = np.where(exclude, -np.inf, sims)
        kth = -np.partition(-sims, self.k - 1, axis=1)[:, self.k - 1]
        return (1.0 - kth).astype(np.float64)


def auroc(novel: np.ndarray, familiar: np.ndarray) -> float:
    """P(score of a novel photo > score of a familiar one), ties counting half."""
    high, low = np.asarray(novel)[:, None], np.asarray(familiar)[None, :]
    return float(np.mean((high > low) + 0.5 * (high == low)))


def choose_threshold(in_distribution_scores: np.ndarray, target: float) -> float:
    """The lowest observed score that at most `target` of the in-distribution scores exceed
    (a photo is flagged when its score is strictly above the threshold)."""
    scores = np.sort(np.asarray(in_distribution_scores, dtype=np.float64))
    allowed = int(np.floor(target * len(scores)))  # photos that may be above
    return float(scores[len(scores) - 1 - allowed])


@dataclass(frozen=True)
class NoveltyReference:
    """What ships with a model version: the fitted score, its threshold and how it was chosen."""

    score: KnnCosine
    threshold: float
    false_alarm_rate: float  # measured on the validation photos
    target_false_alarm_rate: float
    threshold_photos: int  # photos whose scores chose the threshold (train out-of-fold + val)
    validation_scores: np.ndarray  # [n_val], as the API computes them

    @property
    def method(self) -> str:
        return METHOD_KNN_COSINE

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        return self.score.scores(embeddings)

    def flags(self, embeddings: np.ndarray) -> np.ndarray:
        return self.scores(embeddings) > self.threshold

    def spec_block(self) -> dict:
        """The `novelty` block of preprocessing.json (the numbers live in PARAMS_FILE)."""
        return {
            "method": self.method,
            "params_file": PARAMS_FILE,
            "k": self.score.k,
            "bank_size": int(self.score.bank.shape[0]),
            "embedding_size": int(self.score.bank.shape[1]),
            "threshold": self.threshold,
            "false_alarm_rate": self.false_alarm_rate,
            "target_false_alarm_rate": self.target_false_alarm_rate,
            "threshold_chosen_on": (
                f"{self.threshold_photos} photos: training photos scored leave-one-photo-out "
                "and validation photos"
            ),
        }

    def write_params(self, folder: Path) -> Path:
        path = folder / PARAMS_FILE
        np.savez(path, mean=self.score.mean, bank=self.score.bank, k=np.int64(self.score.k))
        return path


def fit_novelty(
    train_views: list[np.ndarray],
    val_embeddings: np.ndarray,
    target: float = DEFAULT_TARGET_FALSE_ALARM_RATE,
    k: int = DEFAULT_K,
    centred: bool = False,
) -> NoveltyReference:
    """Fit the score on the training photos' views (`train_views[i]` `[V_i, D]`, the
    serving crop first) and choose its threshold (module docstring)."""
    bank_views = np.concatenate(train_views)
    score = KnnCosine.fit(bank_views, k, centred)
    owner = np.repeat(np.arange(len(train_views)), [len(v) for v in train_views])
    served = np.stack([v[0] for v in train_views])
    exclude = owner[None, :] == np.arange(len(train_views))[:, None]
    train_scores = score.scores(served, exclude)
    val_scores = score.scores(val_embeddings)
    threshold = choose_threshold(np.concatenate([train_scores, val_scores]), target)
    false_alarms = float(np.mean(val_scores > threshold)) if len(val_scores) else 0.0
    return NoveltyReference(
        score, threshold, false_alarms, target, len(train_scores) + len(val_scores), val_scores
    )


def monitoring_reference(
    reference: NoveltyReference, labels: list[str], val_probs: np.ndarray
) -> dict:
    """`reference.json` (contract: contracts/reference.schema.json): what the drift check
    compares served predictions with, per validation photo as the API computes them."""
    predicted = np.asarray(val_probs).argmax(axis=1)
    count = max(len(predicted), 1)
    return {
        "format_version": 1,
        "labels": list(labels),
        "threshold": reference.threshold,
        "false_alarm_rate": reference.false_alarm_rate,
        "label_mix": {
            label: float(np.sum(predicted == i)) / count for i, label in enumerate(labels)
        },
        "novelty_scores": [float(s) for s in reference.validation_scores],
        "confidences": [float(c) for c in np.asarray(val_probs).max(axis=1)],
    }


def write_reference(data: dict, folder: Path) -> Path:
    """Write reference.json, checked first against our contract (the drift check reads it)."""
    problem = first_problem(REFERENCE_SCHEMA, data)
    if problem is not None:
        raise ValueError(f"reference.json breaks {REFERENCE_SCHEMA} at {problem}")
    path = folder / REFERENCE_FILE
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load_params(path: Path) -> KnnCosine:
    with np.load(path) as params:
        return KnnCosine(params["mean"], params["bank"], int(params["k"]))
