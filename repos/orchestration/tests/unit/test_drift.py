"""The drift statistics against the values scipy gives for the same inputs.

scipy is not installed beside Airflow; the expected values were computed once with
scipy 1.17 (`stats.fisher_exact([[k, n - k], [k0, n0 - k0]], alternative="greater")`,
`stats.kstwobign.sf(sqrt(nm/(n+m)) * D)`) and are written here as constants.
"""

from __future__ import annotations

import pytest

from plantops_orchestration import drift
from plantops_orchestration.config import Settings
from plantops_orchestration.monitoring import Reference, evaluate

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("flagged", "total", "ref_flagged", "ref_total", "expected"),
    [(5, 100, 0, 40, 0.1805605378485868), (10, 160, 0, 40, 0.10128940585555662),
     (30, 200, 0, 40, 0.002826965799846867), (12, 100, 4, 200, 0.0005711742054767709),
     (60, 2000, 3, 40, 0.9671568156573812)],
)  # fmt: skip
def test_fisher_exact_matches_scipy(flagged, total, ref_flagged, ref_total, expected):
    assert drift.fisher_greater(flagged, total, ref_flagged, ref_total) == pytest.approx(
        expected, rel=1e-9
    )


def test_fisher_exact_edges():
    assert drift.fisher_greater(0, 100, 0, 40) == 1.0  # nothing flagged: no evidence
    assert drift.fisher_greater(100, 100, 0, 40) < 1e-20  # every photo flagged
    assert drift.fisher_greater(101, 100, 0, 40) == 0.0  # impossible count


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


# ------------------------------------------------------------------ the out-of-distribution check


# evaluate() reads only the monitor_* thresholds (their defaults); the connection fields
# are required by the settings object, never used here.
SETTINGS = Settings(mysql_user="u", mysql_password="p", s3_access_key="a", s3_secret_key="s")


def _reference(photos: int, flagged: int) -> Reference:
    scores = [0.9] * flagged + [0.1] * (photos - flagged)  # the threshold is 0.5
    return Reference(
        labels=["dandelion", "grass"],
        threshold=0.5,
        false_alarm_rate=flagged / photos,
        label_mix={"dandelion": 0.5, "grass": 0.5},
        novelty_scores=scores,
        confidences=[0.95] * photos,
    )


def _records(n: int, flagged: int) -> list[dict]:
    return [
        {"label": ("dandelion", "grass")[i % 2], "confidence": 0.95,
         "novelty_score": 0.9 if i < flagged else 0.1, "out_of_distribution": i < flagged}
        for i in range(n)
    ]  # fmt: skip


def test_a_few_new_photos_flagged_against_a_reference_with_no_false_alarm_are_not_drift():
    # What a real champion gave: 0 of its 40 validation photos above the threshold, then
    # 5 of 100 new dandelion and grass photos flagged. Against a rate of exactly 0, the
    # binomial test called that drift (p = 0); counted against 0 of 40, it is not.
    report = evaluate(_records(100, 5), _reference(40, 0), SETTINGS)
    check = report["checks"]["ood_rate"]
    assert check["reference_out_of_distribution"] == 0 and check["reference_photos"] == 40
    assert check["p_value"] == pytest.approx(0.1805605378485868, rel=1e-9)
    assert check["drift"] is False and report["drift"] is False


def test_a_sustained_high_out_of_distribution_share_is_drift():
    report = evaluate(_records(200, 30), _reference(40, 0), SETTINGS)
    assert report["checks"]["ood_rate"]["drift"] is True
    assert report["drifted_checks"] == ["ood_rate"]
