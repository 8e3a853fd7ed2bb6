"""The API tests' defaults for the one tiny-model builder (plantops_infra.testing).

`mean_colour` models answer by the average colour of the crop (easy to reason about:
a red image is "red"); `spatial` models multiply every input value by a fixed random
weight, so any preprocessing difference (resize, crop offset, rounding) moves the
probabilities: they catch train/serve skew.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plantops_infra.testing import tiny_model_spec, write_tiny_model

COLOUR_LABELS = ("red", "green", "blue")
spec_dict = tiny_model_spec


def write_model(
    folder: Path,
    labels: tuple[str, ...] | list[str] = COLOUR_LABELS,
    kind: str = "mean_colour",
    seed: int = 0,
    scale: float = 4.0,
    novelty: bool = False,
    **spec_overrides: Any,
) -> Path:
    """Write `model.onnx` + `preprocessing.json` into `folder` (created) and return it;
    `novelty`: a mean-colour model with an `embedding` output and `novelty.npz`."""
    return write_tiny_model(
        folder, labels, kind, seed=seed, scale=scale, novelty=novelty, **spec_overrides
    )
