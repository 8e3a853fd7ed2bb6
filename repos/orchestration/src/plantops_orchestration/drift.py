"""The statistics of the drift check, in plain Python (Airflow's environment has no scipy).

- `fisher_greater`: the one-sided Fisher exact test, for the out-of-distribution share
  of the stream against that of the reference's validation photos (both are counts: the
  reference share comes from a few dozen photos, and is often 0);
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


def fisher_greater(flagged: int, total: int, reference_flagged: int, reference_total: int) -> float:
    """One-sided Fisher exact p-value of "the stream's share flagged/total is above the
    reference's reference_flagged/reference_total": P(X >= flagged) for X hypergeometric,
    `total` draws from both samples pooled."""
    if flagged <= 0:
        return 1.0
    if flagged > total:
        return 0.0
    pooled_flagged = flagged + reference_flagged
    pooled = total + reference_total

    def log_comb(n: int, k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    # k >= flagged leaves at most total - flagged unflagged draws, always available.
    log_all = log_comb(pooled, total)
    terms = [
        log_comb(pooled_flagged, k) + log_comb(pooled - pooled_flagged, total - k) - log_all
        for k in range(flagged, min(total, pooled_flagged) + 1)
    ]
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
