"""The statistics of the drift check, in plain Python (Airflow's environment has no scipy).

- `binomial_sf`: the exact one-sided binomial tail, for the out-of-distribution rate
  against the reference's validation false-alarm rate;
- `ks_2samp`: the two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value
  (the limiting Kolmogorov distribution, scipy's `kstwobign`), for novelty scores
  and confidences;
- `psi`: the population stability index of the predicted-label mix.

Each is checked against scipy's values in tests/unit/test_drift.py (constants there).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

# A label absent on one side would make PSI infinite: fractions are floored at this.
PSI_FLOOR = 1e-4


def binomial_sf(successes: int, trials: int, rate: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, rate)."""
    if successes <= 0:
        return 1.0
    if successes > trials:
        return 0.0
    if rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    log_p, log_q = math.log(rate), math.log1p(-rate)
    log_n = math.lgamma(trials + 1)

    def log_term(k: int) -> float:
        return (
            log_n
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + k * log_p
            + (trials - k) * log_q
        )

    terms = [log_term(k) for k in range(successes, trials + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def ks_2samp(sample: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """(D, p): the largest gap between the two empirical CDFs, and its asymptotic p-value."""
    if not sample or not reference:
        raise ValueError("both samples need at least one value")
    a, b = sorted(sample), sorted(reference)
    n, m = len(a), len(b)
    gap = 0.0
    for x in set(a) | set(b):
        cdf_a = bisect.bisect_right(a, x) / n
        cdf_b = bisect.bisect_right(b, x) / m
        gap = max(gap, abs(cdf_a - cdf_b))
    effective = math.sqrt(n * m / (n + m))
    return gap, _kolmogorov_q(effective * gap)


def _kolmogorov_q(lam: float) -> float:
    """Q_KS(lambda) = 2 sum_j (-1)^(j-1) exp(-2 j^2 lambda^2); 1 for lambda near 0."""
    if lam < 1e-3:
        return 1.0
    total, sign = 0.0, 1.0
    for j in range(1, 101):
        term = sign * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-10 * abs(total) or abs(term) < 1e-300:
            return max(0.0, min(1.0, 2.0 * total))
        sign = -sign
    return 1.0  # the series did not converge: lambda is tiny, the samples alike


def label_fractions(labels: Sequence[str]) -> dict[str, float]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return {label: count / len(labels) for label, count in sorted(counts.items())}


def psi(actual: Mapping[str, float], expected: Mapping[str, float]) -> float:
    """Population stability index: sum over labels of (a - e) * ln(a / e)."""
    total = 0.0
    for label in set(actual) | set(expected):
        a = max(actual.get(label, 0.0), PSI_FLOOR)
        e = max(expected.get(label, 0.0), PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total
