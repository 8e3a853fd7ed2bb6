"""The promotion gate's rule (the MLflow side is in tests/integration)."""

import pytest

from plantops_ml_training.field_check import PairedComparison, compare
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


def paired(champion_only: int, challenger_only: int, photos: int = 263) -> PairedComparison:
    return PairedComparison(photos, champion_only, challenger_only)


def test_a_challenger_worse_on_the_field_check_beyond_the_tolerance_is_refused_with_counts():
    decision = gate(0.97, 0.95, 0.90, paired(champion_only=5, challenger_only=2), tolerance=2)
    assert not decision.promote
    assert "field check on 263 photos" in decision.reason
    assert "champion right and challenger wrong on 5" in decision.reason
    assert "challenger right and champion wrong on 2" in decision.reason
    assert "tolerance 2" in decision.reason


def test_field_check_differences_within_the_tolerance_are_noise_and_promote():
    decision = gate(0.95, 0.95, 0.90, paired(champion_only=4, challenger_only=2), tolerance=2)
    assert decision.promote
    assert "not worse on the field check" in decision.reason


def test_the_field_check_cannot_rescue_a_challenger_worse_on_the_test_split():
    assert not gate(0.93, 0.95, 0.90, paired(champion_only=0, challenger_only=9)).promote


def test_pairs_are_counted_on_the_photos_both_models_were_scored_on():
    challenger = {"a": True, "b": False, "c": False, "new": False}
    champion = {"a": False, "b": True, "c": False, "gone": True}
    assert compare(challenger, champion) == PairedComparison(3, 1, 1)
