"""Paired statistics for comparing two runs item by item, and the one-sided test the accuracy gate uses."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


# Resampling draws at most this many cells at once (tens of megabytes), whatever the number of units.
_CHUNK_CELLS = 4_000_000


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b items only run A got right, c only run B; under H0 the discordant
    items split 50/50, so p = min(1, 2 · P(X ≤ min(b, c))) with X ~ Binomial(b + c, 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


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


def paired_sign_flip_p(a: Sequence[float], b: Sequence[float], n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation test for graded scores: under H0 each item's difference is as likely
    negated, so p = share of random sign flips whose |mean difference| reaches the observed one (seeded; the
    observed assignment counts once, so p > 0)."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0 or not diff.any():
        return 1.0
    rng = np.random.default_rng(seed)
    extreme = 0
    per_chunk = max(1, _CHUNK_CELLS // diff.size)  # the same stream as one draw, in bounded memory
    for start in range(0, n_resamples, per_chunk):
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(per_chunk, n_resamples - start), diff.size))
        extreme += int((np.abs((signs * diff).mean(axis=1)) >= abs(diff.mean()) - 1e-12).sum())
    return float((extreme + 1) / (n_resamples + 1))


def binomial_lower_tail(k: int, n: int, p: float) -> float:
    """P(X ≤ k) for X ~ Binomial(n, p): how surprising k correct of n is if the true accuracy is p."""
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95 % interval for an accuracy of k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)
