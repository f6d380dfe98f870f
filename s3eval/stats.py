"""Paired statistics for comparing two runs unit by unit, the one-sided test the accuracy gate uses, and the
sample size a non-inferiority test needs. Pure functions of numbers; ``s3eval.paired`` turns records into them.

Binomial tails use scipy's regularised incomplete beta (``scipy.special.bdtr``): exact sums of ``math.comb``
terms overflow a float beyond about a thousand units and take seconds for tens of thousands."""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Optional, Sequence

import numpy as np
from scipy.special import bdtr, bdtrc


# Resampling draws at most this many cells at once (8 MB per array), whatever the number of units. Unstratified
# draws do not depend on it (numpy draws chunks as the same stream as one big draw); stratified ones interleave
# their strata per chunk, so changing it changes those.
_CHUNK_CELLS = 1_000_000


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b items only run A got right, c only run B; under H0 the discordant
    items split 50/50, so p = min(1, 2 · P(X ≤ min(b, c))) with X ~ Binomial(b + c, 1/2)."""
    n = b + c
    if n == 0 or b == c:
        return 1.0
    return min(1.0, 2 * float(bdtr(min(b, c), n, 0.5)))


def paired_bootstrap_ci(
    a: Sequence[bool], b: Sequence[bool], n_resamples: int = 10000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of accuracy(b) − accuracy(a), resampling items (pairs kept together), seeded."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0:
        return (float("nan"), float("nan"))
    means = bootstrap_means(diff, n_resamples, seed)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` resamples of ``values`` with replacement (seeded), drawn in chunks so that a set of
    200,000 units needs tens of megabytes, not gigabytes."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // max(1, values.size))
    chunks = []
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        chunks.append(values[rng.integers(0, values.size, size=(size, values.size))].mean(axis=1))
    return np.concatenate(chunks)


def stratified_bootstrap_means(values: np.ndarray, strata: np.ndarray, weights: np.ndarray, resamples: int,
                               seed: int) -> np.ndarray:  # fmt: skip
    """Σ_s weights[s] · (mean of a resample of stratum s's values) for ``resamples`` resamples (seeded):
    ``strata[i]`` is value i's stratum (0 … k − 1), each stratum is resampled within itself at its own size, so
    the weights stay fixed. Drawn in chunks like ``bootstrap_means``; with one stratum of weight 1 the draws,
    and so the means, are those of ``bootstrap_means``."""
    rng = np.random.default_rng(seed)
    members = [values[strata == s] for s in range(len(weights))]
    per_chunk = max(1, _CHUNK_CELLS // max(1, values.size))
    chunks = []
    for start in range(0, resamples, per_chunk):
        size = min(per_chunk, resamples - start)
        total = np.zeros(size)
        for weight, own in zip(weights, members):
            if own.size:
                total += weight * own[rng.integers(0, own.size, size=(size, own.size))].mean(axis=1)
        chunks.append(total)
    return np.concatenate(chunks) if chunks else np.zeros(0)


def paired_sign_flip_p(a: Sequence[float], b: Sequence[float], n_resamples: int = 10000, seed: int = 0,
                       weights: Optional[Sequence[float]] = None) -> float:  # fmt: skip
    """Two-sided paired randomisation test: under H0 each unit's difference is as likely negated, so p = share
    of random sign flips whose |Σ weightᵢ · differenceᵢ| reaches the observed one (seeded; the observed
    assignment counts once, so p > 0). ``weights``: each unit's weight in the headline (a weighted headline's
    weight of its stratum over the stratum's size); default 1/n each, the mean difference."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0 or not diff.any():
        return 1.0
    unit = np.full(diff.size, 1.0 / diff.size) if weights is None else np.asarray(weights, dtype=float)
    weighted = unit * diff
    observed = abs(weighted.sum())
    rng = np.random.default_rng(seed)
    extreme = 0
    per_chunk = max(1, _CHUNK_CELLS // diff.size)  # the same stream as one draw, in bounded memory
    for start in range(0, n_resamples, per_chunk):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(per_chunk, n_resamples - start), diff.size))
        # 1e-12: a flip that reproduces the observed sum must count despite rounding.
        extreme += int((np.abs(signs @ weighted) >= observed - 1e-12).sum())
    return float((extreme + 1) / (n_resamples + 1))


def bootstrap_tail_p(resampled: np.ndarray, bound: float, below: bool) -> float:
    """Share of resampled differences at or beyond ``bound`` (at or below it when ``below``), counting the
    observed one once: (1 + #) / (B + 1). Small when (almost) every resample lies on the other side of it."""
    hits = int((resampled <= bound).sum()) if below else int((resampled >= bound).sum())
    return (1 + hits) / (resampled.size + 1)


def noninferiority_n(second_moment: float, margin: float, alpha: float, power: float = 0.8) -> Optional[int]:
    """Units a one-sided non-inferiority test at ``alpha`` needs for ``power`` when the true difference is 0
    (normal approximation): n = (z₁₋α + z_power)² · s² / margin², s² the per-unit second moment of the
    (weighted) differences (for right/wrong units the discordant share). None where s² or the margin is 0."""
    if second_moment <= 0 or margin <= 0:
        return None
    z = NormalDist().inv_cdf(1 - alpha) + NormalDist().inv_cdf(power)
    return math.ceil(z * z * second_moment / (margin * margin))


def noninferiority_power(n: int, second_moment: float, margin: float, alpha: float) -> Optional[float]:
    """The power of that test with ``n`` units when the true difference is 0: Φ(margin·√(n / s²) − z₁₋α)."""
    if second_moment <= 0 or margin <= 0 or n <= 0:
        return None
    return NormalDist().cdf(margin * math.sqrt(n / second_moment) - NormalDist().inv_cdf(1 - alpha))


def binomial_lower_tail(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p): how surprising k correct of n is if the true accuracy is p."""
    if k < 0:
        return 0.0
    return 1.0 if k >= n else float(bdtr(k, n, p))


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    return 0.0 if k > n else float(bdtrc(k - 1, n, p))


def mcnemar_drop_p(b: int, c: int) -> float:
    """One-sided exact McNemar p for a drop (H1: the candidate is worse): P(X ≤ c), X ~ Binomial(b + c, 1/2),
    where b units only the baseline got right and c only the candidate; 1 without discordant units."""
    return 1.0 if b + c == 0 else binomial_lower_tail(c, b + c, 0.5)


def mcnemar_noninferiority_p(b: int, c: int, n: int, margin: float) -> float:
    """Exact non-inferiority p for paired right/wrong units, conditional on the b + c discordant units of n.

    H0: Δ ≤ −margin against H1: Δ > −margin, with Δ = (c − b) / n. Given m = b + c, Δ = −margin means
    c = m·π0 with π0 = (1 − margin·n/m) / 2, so p = P(X ≥ c), X ~ Binomial(m, π0). Where π0 ≤ 0 even losing
    every discordant unit stays within the margin: p = 0. Without discordant units Δ is exactly 0: p = 0 if
    the margin is positive, else 1."""
    m = b + c
    if m == 0:
        return 0.0 if margin > 0 else 1.0
    pi0 = (1 - margin * n / m) / 2
    if pi0 <= 0:
        return 0.0
    return binomial_upper_tail(c, m, pi0)


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95 % interval for an accuracy of k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)
