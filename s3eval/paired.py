"""Paired, unit-aware comparison of two runs of one task: the headline recomputed unit by unit from what it
recorded (``Headline.unit_score``, ``strata``, ``strata_weights``), the units both runs scored paired, and the
difference (candidate − baseline) estimated and tested.

- Right/wrong units of a mean headline (items, circular questions): exact McNemar on units. b = units only the
  baseline got right, c = units only the candidate got right, n paired units, Δ = (c − b) / n. Two-sided p:
  exact McNemar; drop p: P(X ≤ c), X ~ Binomial(b + c, 1/2); non-inferiority p: exact, conditional on b + c
  (``stats.mcnemar_noninferiority_p``); interval: paired bootstrap over units.
- Graded units or weighted headlines (dialogs): paired bootstrap over units, within strata where the headline
  has them (each stratum keeps its size, so the weights stay fixed). Δ = headline(candidate) −
  headline(baseline) on the paired units; percentile interval; with Δ* the resampled differences,
  non-inferiority p = (1 + #{Δ* ≤ −margin}) / (B + 1) and drop p = (1 + #{Δ* ≥ 0}) / (B + 1): both the share
  of resamples on the null side of the bound (counting the observed Δ once), so p < α about when the bound lies
  outside the one-sided (1 − α) percentile interval. Two-sided p: a paired sign-flip test over the (weighted)
  unit differences.
- Power: units needed for 80 % power of the non-inferiority test at α when the true Δ is 0, n = (z₁₋α + z₀.₈)² ·
  s² / margin², s² = n · Σ uᵢ² dᵢ² with uᵢ a unit's weight in Δ and dᵢ its difference (for right/wrong units the
  discordant share (b + c) / n), and the power the paired units give.

Records of one unit (a question's rotations, a dialog's turns) are always resampled together: every statistic
here sees one number per unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np

from .aggregate import record_score
from .errors import S3evalError
from .results import MEAN, UNIT_ALL, UNIT_MEAN, Headline
from .scoring import RIGHT_WRONG
from .stats import (bootstrap_means, bootstrap_tail_p, mcnemar_drop_p, mcnemar_exact, mcnemar_noninferiority_p,
                    noninferiority_n, noninferiority_power, paired_sign_flip_p, stratified_bootstrap_means)  # fmt: skip
from .types import Record

DEFAULT_RESAMPLES = 2000  # the percentile interval's second digit; 200,000 units take seconds
DEFAULT_SEED = 0
POWER = 0.8
MCNEMAR, BOOTSTRAP = "mcnemar", "bootstrap"


class PairedError(S3evalError, ValueError):
    pass


def unit_rule(headline: Headline, where: str = "") -> str:
    """How a unit's score is made from its records, as the headline recorded it. An item is its only record, so
    an item headline written before the rule was recorded can only have been the mean; any other is refused."""
    if headline.unit_score in (UNIT_MEAN, UNIT_ALL):
        return headline.unit_score
    if headline.unit_score is None and headline.unit == "item":
        return UNIT_MEAN
    prefix = f"{where}: " if where else ""
    raise PairedError(f"{prefix}the {headline.metric} headline was written before s3eval recorded how a "
                      f"{headline.unit}'s score is made; run the run's command again: it reuses every response and "
                      f"rewrites results.json")  # fmt: skip


def definition_of(headline: Mapping) -> dict:
    """What must agree between two runs' headlines (a ``results.json`` headline entry) for their unit scores to be
    compared; an item headline without a recorded rule counts as the mean it must have been."""
    rule = headline.get("unit_score") or (UNIT_MEAN if headline.get("unit") == "item" else None)
    return {"metric": headline.get("metric"), "unit": headline.get("unit"), "unit_score": rule,
            "aggregation": headline.get("aggregation", MEAN), "strata": headline.get("strata"),
            "strata_weights": dict(headline.get("strata_weights") or {})}  # fmt: skip


@dataclass(frozen=True)
class _Unit:
    score: float
    stratum: Optional[str]
    members: tuple[str, ...]  # its records' sample ids, in order


def unit_of(record: Record, headline: Headline) -> str:
    """The unit a record belongs to under ``headline``: its own for an item headline (as that headline counts,
    whatever unit the record names), else its ``unit`` (a question, a dialog) or itself."""
    return record.sample_id if headline.unit == "item" else record.unit or record.sample_id


def _units(records: Sequence[Record], headline: Headline) -> dict[str, _Unit]:
    rule = unit_rule(headline)
    grouped: dict[str, list[Record]] = {}
    for record in records:
        grouped.setdefault(unit_of(record, headline), []).append(record)
    out: dict[str, _Unit] = {}
    for unit, members in grouped.items():
        if rule == UNIT_ALL:
            # As the circular headline counts: an unscored or failed rotation is not right.
            score = float(all(bool(r.correct) for r in members))
        else:
            scored = [record_score(r) for r in members if r.score is not None or r.correct is not None]
            if not scored:
                continue  # no gold: the unit has no score
            score = sum(scored) / len(scored)
        stratum = None
        if headline.strata:
            stratum = members[0].groups.get(headline.strata)
            if stratum not in headline.strata_weights:
                continue  # e.g. an invalid dialog: no weight, not part of the headline
        out[unit] = _Unit(score, stratum, tuple(r.sample_id for r in members))
    return out


def unit_scores(records: Sequence[Record], headline: Headline) -> tuple[list[str], list[float], Optional[list[str]]]:
    """(unit ids, their scores, their strata or None) in first-seen order: the units ``headline`` is made of,
    each scored as ``headline.unit_score`` says; ``headline_score`` of them is the headline."""
    units = _units(records, headline)
    strata = [u.stratum for u in units.values()] if headline.strata else None
    return list(units), [u.score for u in units.values()], strata  # type: ignore[misc]


def headline_score(scores: Sequence[float], strata: Optional[Sequence[str]], headline: Headline) -> Optional[float]:
    """The headline over these unit scores: their mean, or Σ over the strata present of weight × the stratum's
    mean. Summed in the order the task's own headline sums, so the number is the same to the last bit."""
    if not scores:
        return None
    if strata is None:
        return sum(scores) / len(scores)
    by_stratum: dict[str, list[float]] = {}
    for stratum, score in zip(strata, scores):
        by_stratum.setdefault(stratum, []).append(score)
    return sum(headline.strata_weights[s] * (sum(v) / len(v)) for s, v in by_stratum.items())


@dataclass(frozen=True)
class PairedUnits:
    """The units two runs of one task both scored, with the same records, and each run's score per unit."""

    ids: list[str]
    baseline: list[float]
    candidate: list[float]
    strata: Optional[list[str]]
    n_records: int  # records in the paired units
    n_baseline_only: int  # units only the baseline scored
    n_candidate_only: int
    n_mismatched: int  # units both scored but from different records (e.g. a dialog cut short in one run)


def pair_units(baseline: Sequence[Record], candidate: Sequence[Record], headline: Headline) -> PairedUnits:
    """Pair the runs' units by id (baseline order): only units present in both, with a score in both and made of
    the same records, so that records of one unit are never split or compared against a part of it."""
    ours, theirs = _units(baseline, headline), _units(candidate, headline)
    ids, mismatched = [], 0
    for unit, mine in ours.items():
        other = theirs.get(unit)
        if other is None:
            continue
        if sorted(other.members) != sorted(mine.members):
            mismatched += 1
            continue
        ids.append(unit)
    return PairedUnits(
        ids=ids, baseline=[ours[u].score for u in ids], candidate=[theirs[u].score for u in ids],
        strata=[ours[u].stratum for u in ids] if headline.strata else None,  # type: ignore[misc]
        n_records=sum(len(ours[u].members) for u in ids),
        n_baseline_only=sum(u not in theirs for u in ours), n_candidate_only=sum(u not in ours for u in theirs),
        n_mismatched=mismatched,
    )  # fmt: skip


@dataclass(frozen=True)
class PairedResult:
    """Candidate vs baseline on the paired units of one task. Scores and Δ are fractions (not percent)."""

    metric: str
    unit: str
    unit_score: str
    test: str  # MCNEMAR (right/wrong units of a mean headline) or BOOTSTRAP (graded or weighted)
    n_units: int
    n_records: int
    n_baseline_only: int
    n_candidate_only: int
    n_mismatched: int
    baseline_score: Optional[float]
    candidate_score: Optional[float]
    delta: Optional[float]  # candidate − baseline
    ci_low: Optional[float]
    ci_high: Optional[float]
    level: float
    n_baseline_better: int  # units the baseline scored higher (McNemar's b)
    n_candidate_better: int  # units the candidate scored higher (McNemar's c)
    p_two_sided: float  # exact McNemar, or the paired sign-flip test
    p_drop: float  # H1: the candidate is worse
    margin: float
    p_noninferiority: float  # H1: the candidate is at most `margin` worse
    alpha: float
    second_moment: Optional[float]  # s², per unit, of the weighted differences
    n_needed: Optional[int]  # units for 80 % power of the non-inferiority test when the true Δ is 0
    power: Optional[float]  # that power with the paired units
    power_note: str  # why n_needed is None, else ""
    resamples: int
    seed: int
    strata_units: dict[str, int] = field(default_factory=dict)  # paired units per stratum

    @property
    def n_dropped(self) -> int:
        return self.n_baseline_only + self.n_candidate_only + self.n_mismatched

    @property
    def test_name(self) -> str:
        if self.test == MCNEMAR:
            return "exact McNemar"
        return "stratified paired bootstrap" if self.strata_units else "paired bootstrap"

    def noninferior(self) -> bool:
        return self.p_noninferiority < self.alpha


def paired_test(units: PairedUnits, headline: Headline, *, margin: float = 0.0, alpha: float = 0.05,
                level: float = 0.95, resamples: int = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> PairedResult:  # fmt: skip
    """The paired statistics of ``units`` (module docstring)."""
    n = len(units.ids)
    base, cand = np.asarray(units.baseline, dtype=float), np.asarray(units.candidate, dtype=float)
    diff = cand - base
    b, c = int((base > cand).sum()), int((cand > base).sum())
    common = dict(metric=headline.metric, unit=headline.unit, unit_score=unit_rule(headline), n_units=n,
                  n_records=units.n_records, n_baseline_only=units.n_baseline_only,
                  n_candidate_only=units.n_candidate_only, n_mismatched=units.n_mismatched, level=level,
                  n_baseline_better=b, n_candidate_better=c, margin=margin, alpha=alpha, resamples=resamples,
                  seed=seed)  # fmt: skip
    if n == 0:
        return PairedResult(**common, test=BOOTSTRAP, baseline_score=None, candidate_score=None, delta=None,
                            ci_low=None, ci_high=None, p_two_sided=1.0, p_drop=1.0, p_noninferiority=1.0,
                            second_moment=None, n_needed=None, power=None, power_note="no paired units")  # fmt: skip
    codes, stratum_weights, strata_units = _strata(units.strata, headline, n)
    weight = stratum_weights[codes] / np.bincount(codes)[codes]  # each unit's share of Δ
    second_moment = float(n * np.sum(weight**2 * diff**2))
    base_score = headline_score(units.baseline, units.strata, headline)
    cand_score = headline_score(units.candidate, units.strata, headline)
    binary = (headline.kind == RIGHT_WRONG and headline.aggregation == MEAN and units.strata is None
              and bool(np.isin(base, (0.0, 1.0)).all() and np.isin(cand, (0.0, 1.0)).all()))  # fmt: skip
    if binary:
        test, delta, second_moment = MCNEMAR, (c - b) / n, (b + c) / n  # the same s², without rounding
        resampled = bootstrap_means(diff, resamples, seed)
        p_two, p_drop, p_ni = mcnemar_exact(b, c), mcnemar_drop_p(b, c), mcnemar_noninferiority_p(b, c, n, margin)
    else:
        test, delta = BOOTSTRAP, cand_score - base_score  # type: ignore[operator]
        resampled = stratified_bootstrap_means(diff, codes, stratum_weights, resamples, seed)
        p_ni = bootstrap_tail_p(resampled, -margin, below=True)
        p_drop = bootstrap_tail_p(resampled, 0.0, below=False)
        p_two = paired_sign_flip_p(base, cand, resamples, seed, weights=weight)
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    n_needed = noninferiority_n(second_moment, margin, alpha, POWER)
    note = ""
    if margin <= 0:
        note = "needs a margin above 0"
    elif n_needed is None:
        note = f"no discordant {headline.unit}s" if binary else f"the runs score every {headline.unit} the same"
    return PairedResult(**common, test=test, baseline_score=base_score, candidate_score=cand_score, delta=delta,
                        ci_low=float(low), ci_high=float(high), p_two_sided=p_two, p_drop=p_drop,
                        p_noninferiority=p_ni, second_moment=second_moment, n_needed=n_needed,
                        power=noninferiority_power(n, second_moment, margin, alpha), power_note=note,
                        strata_units=strata_units)  # fmt: skip


def _strata(strata: Optional[Sequence[str]], headline: Headline, n: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Per unit its stratum's code, per code the stratum's weight, and the units per stratum; one stratum of
    weight 1 for a mean headline."""
    if strata is None:
        return np.zeros(n, dtype=np.intp), np.ones(1), {}
    names = list(dict.fromkeys(strata))
    index = {name: i for i, name in enumerate(names)}
    codes = np.fromiter((index[s] for s in strata), dtype=np.intp, count=n)
    counts = np.bincount(codes, minlength=len(names))
    return codes, np.array([headline.strata_weights[s] for s in names], dtype=float), {
        name: int(counts[i]) for i, name in enumerate(names)}  # fmt: skip


def compare_records(baseline: Sequence[Record], candidate: Sequence[Record], headline: Headline,
                    **options) -> PairedResult:  # fmt: skip
    """``paired_test`` of the units two runs' records of one task share (``pair_units``)."""
    return paired_test(pair_units(baseline, candidate, headline), headline, **options)
