"""The promotion gate's rule (the MLflow side is in tests/integration)."""

import pytest

from plantops_ml_training.registry import gate

pytestmark = pytest.mark.unit


def test_first_model_above_the_floor_is_promoted():
    assert gate(0.95, None, 0.90).promote


def test_below_the_floor_is_never_promoted_even_without_a_champion():
    decision = gate(0.85, None, 0.90)
    assert not decision.promote
    assert "floor" in decision.reason


def test_a_tie_with_the_champion_is_promoted():
    assert gate(0.95, 0.95, 0.90).promote


def test_worse_than_the_champion_is_not_promoted_and_says_by_how_much():
    decision = gate(0.93, 0.95, 0.90)
    assert not decision.promote
    assert "0.9300" in decision.reason and "0.9500" in decision.reason
