"""Temperature scaling: fitted on validation logits, divided out inside the served graph."""

import numpy as np
import pytest
import torch
from torch import nn

from plantops_ml_training.calibration import TEMPERATURES, fit_temperature
from plantops_ml_training.model import ServingModel

pytestmark = pytest.mark.unit


def sampled(temperature: float, n: int = 4000, seed: int = 0):
    """Logits whose labels are drawn from softmax(logits / temperature): T is the truth."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, size=(n, 2))
    scaled = np.exp(logits / temperature)
    probs = scaled / scaled.sum(axis=1, keepdims=True)
    targets = (rng.random(n) < probs[:, 1]).astype(int)
    return logits, targets


@pytest.mark.parametrize("truth", [0.5, 1.0, 2.0])
def test_the_fitted_temperature_recovers_the_one_the_labels_were_drawn_with(truth):
    logits, targets = sampled(truth)
    assert fit_temperature(logits, targets) == pytest.approx(truth, rel=0.15)


def test_a_validation_split_the_model_gets_all_right_cannot_push_t_to_zero():
    logits = np.array([[5.0, -5.0], [-4.0, 4.0]])
    assert fit_temperature(logits, np.array([0, 1])) == TEMPERATURES.min() > 0


def test_no_validation_photos_means_no_scaling():
    assert fit_temperature(np.zeros((0, 2)), np.zeros(0, dtype=int)) == 1.0


def test_the_served_model_divides_its_logits_by_the_temperature():
    linear = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    served = ServingModel(linear, tta_flip=False, temperature=2.0)
    with torch.inference_mode():
        assert torch.allclose(served(x), linear(x) / 2.0)
