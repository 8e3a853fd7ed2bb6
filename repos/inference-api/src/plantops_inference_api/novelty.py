"""The novelty score of a prediction, with numpy only (issue 17).

A model exported with a novelty reference has a second ONNX output (`embedding_name`,
the pooled features), a `novelty` block in `preprocessing.json` and a parameters file
beside `model.onnx` (docs/architecture.md, "Model artifacts"). The one method written
there, `knn_cosine`: subtract `mean` from the embedding (zeros for models trained with
the default: the plain cosine), normalise it, and score `1 - ` its cosine similarity to
the k-th most similar training view in the bank.
A photo is out of distribution when its score is above the model's threshold, which
training chose on its training and validation photos for a stated false-alarm rate.

A model without the block serves as before, with null novelty fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from plantops_inference_api.errors import ModelLoadError

METHODS = ("knn_cosine",)


class NoveltySpec(BaseModel):
    """The `novelty` block of preprocessing.json (the numbers are in `params_file`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    method: Literal["knn_cosine"]
    params_file: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    threshold: float
    false_alarm_rate: float = Field(ge=0, le=1)
    target_false_alarm_rate: float | None = Field(default=None, ge=0, le=1)


@dataclass(frozen=True)
class NoveltyScorer:
    spec: NoveltySpec
    mean: np.ndarray  # [D] float32
    bank_t: np.ndarray  # [D, M] float32: the training views, unit rows, transposed once
    k: int

    @property
    def embedding_size(self) -> int:
        return int(self.mean.shape[0])

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """Novelty of each row of `[N, D]` embeddings (float64 `[N]`)."""
        query = np.asarray(embeddings, dtype=np.float32) - self.mean
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        sims = query @ self.bank_t
        kth = -np.partition(-sims, self.k - 1, axis=1)[:, self.k - 1]
        return (1.0 - kth).astype(np.float64)

    def is_novel(self, scores: np.ndarray) -> np.ndarray:
        return scores > self.spec.threshold


def load_scorer(folder: Path, spec: NoveltySpec) -> NoveltyScorer:
    """Read the parameters file named by the spec; a ModelLoadError says what is wrong."""
    path = folder / spec.params_file
    if not path.is_file():
        raise ModelLoadError("verify", f"{spec.params_file} (novelty parameters) is missing")
    try:
        with np.load(path, allow_pickle=False) as params:
            mean = np.asarray(params["mean"], dtype=np.float32)
            bank = np.asarray(params["bank"], dtype=np.float32)
            k = int(params["k"])
    except (OSError, KeyError, ValueError) as exc:
        raise ModelLoadError("verify", f"{spec.params_file} is not readable: {exc}") from exc
    if bank.ndim != 2 or mean.shape != (bank.shape[1],) or not 1 <= k <= bank.shape[0]:
        raise ModelLoadError(
            "verify",
            f"{spec.params_file}: bank {bank.shape}, mean {mean.shape} and k={k} do not fit",
        )
    return NoveltyScorer(spec, mean, np.ascontiguousarray(bank.T), k)
