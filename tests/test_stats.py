"""Statistics against hand-computed values and scipy."""

import pytest
from scipy import stats as scipy_stats

from s3eval.stats import binomial_lower_tail, mcnemar_exact, paired_bootstrap_ci, wilson_interval


@pytest.mark.parametrize(
    "b,c,expected",
    [(0, 0, 1.0), (1, 6, 2 * (1 + 7) / 128), (0, 5, 2 / 32), (3, 3, 1.0), (10, 2, 2 * (1 + 12 + 66) / 4096)],
)
def test_mcnemar_exact_hand_computed(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected)


@pytest.mark.parametrize("b,c", [(4, 15), (20, 9), (0, 1), (50, 70)])
def test_mcnemar_exact_equals_scipy_binomtest(b, c):
    assert mcnemar_exact(b, c) == pytest.approx(scipy_stats.binomtest(b, b + c, 0.5).pvalue)


def test_binomial_lower_tail():
    assert binomial_lower_tail(0, 3, 0.5) == pytest.approx(1 / 8)
    assert binomial_lower_tail(1, 3, 0.5) == pytest.approx(4 / 8)
    assert binomial_lower_tail(30, 100, 0.4) == pytest.approx(scipy_stats.binom.cdf(30, 100, 0.4))


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
