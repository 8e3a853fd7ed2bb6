"""The drift statistics against the values scipy gives for the same inputs.

scipy is not installed beside Airflow; the expected values were computed once with
scipy 1.x (`stats.binom.sf(k - 1, n, p)`, `stats.kstwobign.sf(sqrt(nm/(n+m)) * D)`) and
are written here as constants.
"""

from __future__ import annotations

import pytest

from plantops_orchestration import drift

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("k", "n", "rate", "expected"),
    [(12, 100, 0.05, 0.004274182466365919), (30, 200, 0.1, 0.016326565931766502),
     (1, 10, 0.1, 0.6513215599000001)],
)  # fmt: skip
def test_binomial_tail_matches_scipy(k, n, rate, expected):
    assert drift.binomial_sf(k, n, rate) == pytest.approx(expected, rel=1e-9)


def test_binomial_tail_edges():
    assert drift.binomial_sf(0, 10, 0.3) == 1.0
    assert drift.binomial_sf(11, 10, 0.3) == 0.0
    assert drift.binomial_sf(5, 10, 0.0) == 0.0
    # 2,000 trials sum in log space without overflow (scipy: 0.0016918398378680702).
    assert drift.binomial_sf(60, 2000, 0.02) == pytest.approx(0.0016918398378680702, rel=1e-9)


def test_ks_matches_scipy_on_shifted_samples():
    a = [0.1 * i for i in range(50)]
    b = [0.1 * i + 0.8 for i in range(60)]
    statistic, p_value = drift.ks_2samp(a, b)
    assert statistic == pytest.approx(0.3)
    assert p_value == pytest.approx(0.014758381351637973, rel=1e-6)


def test_ks_of_two_samples_of_one_distribution_is_not_significant():
    a = [((i * 37) % 101) / 101 for i in range(200)]
    b = [((i * 53) % 97) / 97 for i in range(150)]
    statistic, p_value = drift.ks_2samp(a, b)
    assert statistic == pytest.approx(0.026666666666666616)
    assert p_value == pytest.approx(0.9999999835448927, rel=1e-6)


def test_ks_needs_values_on_both_sides():
    with pytest.raises(ValueError, match="at least one value"):
        drift.ks_2samp([], [1.0])


def test_psi_of_a_label_mix():
    assert drift.psi({"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1}) == pytest.approx(
        0.8788898309344878
    )
    assert drift.psi({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    # A label never predicted on the reference side is large, not infinite.
    assert 0.25 < drift.psi({"a": 0.7, "rose": 0.3}, {"a": 1.0}) < 10


def test_label_fractions():
    assert drift.label_fractions(["a", "b", "a", "a"]) == {"a": 0.75, "b": 0.25}
