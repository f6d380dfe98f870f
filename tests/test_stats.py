"""Statistics against hand-computed values and scipy."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from s3eval.stats import (binomial_lower_tail, binomial_upper_tail, bootstrap_tail_p, mcnemar_exact,
                          paired_bootstrap_ci, wilson_interval)  # fmt: skip


@pytest.mark.parametrize(
    "b,c,expected",
    [(0, 0, 1.0), (1, 6, 2 * (1 + 7) / 128), (0, 5, 2 / 32), (3, 3, 1.0), (10, 2, 2 * (1 + 12 + 66) / 4096)],
)
def test_mcnemar_exact_hand_computed(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected)


@pytest.mark.parametrize("b,c", [(4, 15), (20, 9), (0, 1), (50, 70), (3, 3), (700, 810)])
def test_mcnemar_exact_equals_scipy_binomtest(b, c):
    assert abs(mcnemar_exact(b, c) - scipy_stats.binomtest(b, b + c, 0.5).pvalue) < 1e-12


def test_binomial_lower_tail():
    assert binomial_lower_tail(0, 3, 0.5) == pytest.approx(1 / 8)
    assert binomial_lower_tail(1, 3, 0.5) == pytest.approx(4 / 8)
    assert binomial_lower_tail(30, 100, 0.4) == pytest.approx(scipy_stats.binom.cdf(30, 100, 0.4))
    assert (binomial_lower_tail(8, 10, 1.0), binomial_lower_tail(10, 10, 1.0), binomial_lower_tail(-1, 10, 0.5)) == (
        0.0, 1.0, 0.0)


def test_binomial_tails_hold_for_large_sets():
    # Found: summing math.comb terms as floats overflowed ("int too large to convert to float") past ~1000 units.
    assert abs(binomial_lower_tail(1450, 2000, 0.74) - scipy_stats.binom.cdf(1450, 2000, 0.74)) < 1e-12
    assert abs(binomial_upper_tail(27, 72, 0.4375) - scipy_stats.binom.sf(26, 72, 0.4375)) < 1e-12
    assert (binomial_upper_tail(0, 5, 0.3), binomial_upper_tail(6, 5, 0.3)) == (1.0, 0.0)


def test_bootstrap_tail_p_counts_the_observed_once():
    resampled = np.array([-0.03, -0.02, -0.01, 0.0, 0.01])
    assert bootstrap_tail_p(resampled, -0.02, below=True) == 3 / 6  # −0.03 and −0.02, plus one
    assert bootstrap_tail_p(resampled, 0.0, below=False) == 3 / 6
    assert bootstrap_tail_p(resampled, -0.5, below=True) == 1 / 6


def test_wilson_interval_matches_scipy():
    low, high = wilson_interval(33, 90)
    ci = scipy_stats.binomtest(33, 90).proportion_ci(method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high))


def test_paired_bootstrap_ci():
    a = [True] * 50 + [False] * 50
    assert paired_bootstrap_ci(a, a) == (0.0, 0.0)
    b = [True] * 100
    low, high = paired_bootstrap_ci(a, b)
    assert low < 0.5 < high and low > 0.35 and high < 0.65
    assert paired_bootstrap_ci(a, b) == paired_bootstrap_ci(a, b)  # seeded
