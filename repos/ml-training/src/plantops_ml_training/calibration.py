"""Temperature scaling: one number T, fitted on validation photos, that the exported
graph divides its logits by, so the API's softmax gives calibrated probabilities.

Only validation photos are used (never the test split, never the field check): the
probabilities the evaluation reports are then an honest measure of calibration.
"""

from __future__ import annotations

import numpy as np

# A grid instead of an optimiser: deterministic, and bounded, so a validation split the
# model gets all right (its NLL falls forever as T shrinks) cannot push T to zero.
TEMPERATURES = np.geomspace(0.25, 4.0, 161)


def negative_log_likelihood(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    scaled = logits / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature of the grid with the lowest mean NLL on these validation logits."""
    if len(targets) == 0:
        return 1.0
    losses = [negative_log_likelihood(logits, targets, t) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])
