"""Unit-aware paired statistics (s3eval.paired, s3eval.stats): headlines recomputed from unit scores, p-values
against scipy, non-inferiority edge cases, the power line, seeded and stratified resampling, and units resampled
whole."""

import json
import random
from statistics import NormalDist

import numpy as np
import pytest
from scipy import stats as scipy_stats

from s3eval.paired import (PairedError, PairedUnits, compare_records, headline_score, pair_units, paired_test,
                           unit_scores)  # fmt: skip
from s3eval.results import Headline
from s3eval.stats import (bootstrap_means, mcnemar_drop_p, mcnemar_exact, mcnemar_noninferiority_p, noninferiority_n,
                          noninferiority_power, paired_sign_flip_p, stratified_bootstrap_means)  # fmt: skip
from s3eval.task import TaskOptions, default_headline
from s3eval.task_registry import build_task, load_definitions
from s3eval.types import Record

from dialog_factory import TWO_DIALOGS, write_dialog_set
from test_qa_tasks import ROWS, write_set


def rec(sample_id, score, unit=None, groups=None, metric=None, correct=None):
    """A scored record; right/wrong when ``metric`` is None (the shared parser), so ``correct`` follows the score."""
    if metric is None and correct is None:
        correct = score == 1.0
    return Record(task="t", sample_id=sample_id, answer_type="choice", choices=["a", "b"], gold="A",
                  groups=dict(groups or {}), score=score, correct=correct, unit=unit, metric=metric)  # fmt: skip


def circular_task(tmp_path):
    write_set(tmp_path / "set", ROWS)
    name = f"qa_circ_{tmp_path.name}"
    (tmp_path / "defs.yaml").write_text(f"tasks:\n  - name: {name}\n    path: set\n    modality: image\n"
                                        f"    question_type: choice\n    metric: choice_letter\n    circular: true\n")
    load_definitions(tmp_path / "defs.yaml")
    return build_task(name, TaskOptions())


def dialog_task(tmp_path):
    folder = write_dialog_set(tmp_path / "dialogs", TWO_DIALOGS)
    name = f"dlg_{tmp_path.name}"
    (tmp_path / "dialogs.yaml").write_text(json.dumps({"tasks": [{"name": name, "format": "dialog",
                                                                   "path": str(folder)}]}))  # fmt: skip
    load_definitions(tmp_path / "dialogs.yaml")
    return build_task(name, TaskOptions())


def item_records(rng):
    # Graded items, one without a gold (left out of the headline), and one failed item (score 0).
    out = [rec(f"i{k}", rng.random(), metric="vqa_accuracy") for k in range(37)]
    out.append(Record(task="t", sample_id="nogold", answer_type="open", choices=[], gold=None, groups={}))
    out.append(rec("failed", 0.0, metric="vqa_accuracy"))
    return out


def circular_records(rng):
    return [rec(f"q{q}@{k}", float(rng.random() < 0.8), unit=f"q{q}") for q in range(29) for k in range(4)]


def dialog_records(rng):
    types = ["text", "image", "audio", "image+audio", "invalid"]
    return [rec(f"d{d}/{k}", rng.random(), unit=f"d{d}", groups={"dialog_type": types[d % 5], "turn": str(k)},
                metric="meteor")
            for d in range(31) for k in range(1 + d % 3)]  # fmt: skip


@pytest.mark.parametrize("build_headline,make_records,unit_score,strata,n_units", [
    (lambda tmp: default_headline, item_records, "mean", None, 38),
    (lambda tmp: circular_task(tmp).headline, circular_records, "all", None, 29),
    (lambda tmp: dialog_task(tmp).headline, dialog_records, "mean", "dialog_type", 25),
], ids=["items", "circular", "dialogs"])  # fmt: skip
def test_the_headline_recomputed_from_unit_scores_is_the_headline_to_the_bit(tmp_path, build_headline, make_records,
                                                                              unit_score, strata, n_units):  # fmt: skip
    records = make_records(random.Random(7))
    headline = build_headline(tmp_path)(records)
    assert (headline.unit_score, headline.strata) == (unit_score, strata)
    ids, scores, unit_strata = unit_scores(records, headline)
    assert len(ids) == len(scores) == n_units  # dialogs: the 6 invalid ones carry no weight
    assert headline_score(scores, unit_strata, headline) == headline.score
    if strata:
        assert headline.strata_weights == {"text": 0.1, "image": 0.2, "audio": 0.3, "image+audio": 0.4}
        assert "invalid" not in unit_strata


def test_a_headline_without_its_unit_rule_is_refused_unless_it_is_per_item():
    old = Headline("circular_accuracy", 0.5, "", "right_wrong", "question", 2)
    records = [rec("q1@0", 1.0, unit="q1"), rec("q1@1", 0.0, unit="q1")]
    with pytest.raises(PairedError, match=r"^the circular_accuracy headline was written before s3eval recorded how a "
                                          r"question's score is made; run the run's command again: it reuses every "
                                          r"response and rewrites results.json$"):  # fmt: skip
        unit_scores(records, old)
    items = Headline("accuracy", 0.5, "", "right_wrong", "item", 2)
    assert unit_scores(records, items) == (["q1@0", "q1@1"], [1.0, 0.0], None)


def right_wrong_units(b, c, both, neither):
    """Paired 0/1 unit scores with b units only the baseline got right, c only the candidate."""
    base = [1.0] * b + [0.0] * c + [1.0] * both + [0.0] * neither
    cand = [0.0] * b + [1.0] * c + [1.0] * both + [0.0] * neither
    n = len(base)
    return PairedUnits([f"u{i}" for i in range(n)], base, cand, None, n, 0, 0, 0)


ITEMS = Headline("accuracy", None, "", "right_wrong", "item", 0, unit_score="mean")


@pytest.mark.parametrize("b,c,both,neither,margin", [
    (4, 15, 60, 21, 0.02), (20, 9, 50, 21, 0.05), (0, 1, 5, 0, 0.01), (50, 70, 300, 80, 0.03), (7, 7, 10, 2, 0.1),
    (3, 0, 90, 7, 0.0),
])  # fmt: skip
def test_mcnemar_p_values_equal_scipy_binomtest(b, c, both, neither, margin):
    result = paired_test(right_wrong_units(b, c, both, neither), ITEMS, margin=margin)
    n, m = b + c + both + neither, b + c
    assert (result.test, result.n_baseline_better, result.n_candidate_better) == ("mcnemar", b, c)
    assert result.delta == (c - b) / n
    assert abs(result.p_two_sided - scipy_stats.binomtest(c, m, 0.5).pvalue) < 1e-12
    assert abs(result.p_drop - scipy_stats.binomtest(c, m, 0.5, alternative="less").pvalue) < 1e-12
    pi0 = (1 - margin * n / m) / 2
    assert abs(result.p_noninferiority - scipy_stats.binomtest(c, m, pi0, alternative="greater").pvalue) < 1e-12
    assert result.second_moment == pytest.approx(m / n, abs=1e-15)


def test_mcnemar_exact_agrees_with_scipy_on_large_counts():
    # Found: exact sums of math.comb terms overflow a float past ~1000 units (binomial_lower_tail) or take seconds.
    assert abs(mcnemar_exact(4900, 5150) - scipy_stats.binomtest(5150, 10050, 0.5).pvalue) < 1e-12
    assert abs(mcnemar_drop_p(5150, 4900) - scipy_stats.binomtest(4900, 10050, 0.5, alternative="less").pvalue) < 1e-12


def test_non_inferiority_edge_cases():
    # π0 = (1 − 0.05 · 100 / 3) / 2 < 0: even losing all 3 discordant units stays within the margin.
    assert mcnemar_noninferiority_p(3, 0, 100, 0.05) == 0.0
    # π0 = 0 exactly: also p = 0.
    assert mcnemar_noninferiority_p(5, 5, 100, 0.1) == 0.0
    # No discordant units: Δ is exactly 0, inside any positive margin.
    assert mcnemar_noninferiority_p(0, 0, 100, 0.01) == 0.0
    assert mcnemar_noninferiority_p(0, 0, 100, 0.0) == 1.0
    same = paired_test(right_wrong_units(0, 0, 30, 10), ITEMS, margin=0.01)
    assert (same.p_noninferiority, same.p_two_sided, same.p_drop, same.delta) == (0.0, 1.0, 1.0, 0.0)
    assert (same.n_needed, same.power, same.power_note) == (None, None, "no discordant items")
    assert paired_test(right_wrong_units(1, 0, 5, 0), ITEMS, margin=0.0).power_note == "needs a margin above 0"


def test_the_power_line_by_the_normal_approximation():
    result = paired_test(right_wrong_units(10, 10, 150, 30), ITEMS, margin=0.05, alpha=0.05)
    z = scipy_stats.norm.ppf(0.95) + scipy_stats.norm.ppf(0.8)
    # s² = discordant share = 20 / 200; n = z² · 0.1 / 0.05² = 247.3… → 248.
    assert result.second_moment == 0.1 and result.n_needed == 248
    assert z * z * 0.1 / 0.0025 == pytest.approx(247.30, abs=0.01)
    expected_power = scipy_stats.norm.cdf(0.05 * np.sqrt(200 / 0.1) - scipy_stats.norm.ppf(0.95))
    assert result.power == pytest.approx(expected_power, abs=1e-12) and 0.7 < result.power < 0.8
    assert noninferiority_power(248, 0.1, 0.05, 0.05) >= 0.8 > noninferiority_power(247, 0.1, 0.05, 0.05)
    assert noninferiority_n(0.0, 0.05, 0.05) is None and noninferiority_n(0.1, 0.0, 0.05) is None


def test_bootstrap_is_seeded():
    values = np.random.default_rng(3).random(500)
    strata = np.arange(500) % 3
    weights = np.array([0.2, 0.3, 0.5])
    first = stratified_bootstrap_means(values, strata, weights, 300, seed=11)
    assert np.array_equal(first, stratified_bootstrap_means(values, strata, weights, 300, seed=11))
    assert not np.array_equal(first, stratified_bootstrap_means(values, strata, weights, 300, seed=12))
    # One stratum of weight 1 is bootstrap_means, draw for draw.
    assert np.array_equal(stratified_bootstrap_means(values, np.zeros(500, dtype=int), np.ones(1), 300, 11),
                          bootstrap_means(values, 300, 11))  # fmt: skip
    units = PairedUnits([f"u{i}" for i in range(500)], list(values), list(values[::-1]), None, 500, 0, 0, 0)
    graded = Headline("vqa_accuracy", None, "", "graded", "item", 0, unit_score="mean")
    assert paired_test(units, graded, seed=5) == paired_test(units, graded, seed=5)


def test_strata_are_resampled_within_themselves_at_their_own_size():
    # Stratum 0 holds 0s, stratum 1 holds 1s: a resample that kept each stratum's size gives exactly
    # 0.25 · 0 + 0.75 · 1, every time; pooling the strata would mix them.
    values = np.array([0.0] * 30 + [1.0] * 5)
    strata = np.array([0] * 30 + [1] * 5)
    means = stratified_bootstrap_means(values, strata, np.array([0.25, 0.75]), 1000, seed=0)
    assert set(means.tolist()) == {0.75}
    assert len(set(bootstrap_means(values, 1000, 0).tolist())) > 5


def test_a_weighted_headline_is_resampled_per_stratum_and_tested_with_weights():
    integral = Headline("integral", None, "", "graded", "dialog", 0, "weighted", unit_score="mean",
                        strata="dialog_type", strata_weights={"text": 0.1, "image+audio": 0.4})  # fmt: skip
    base = [0.2, 0.4, 0.6, 0.5, 0.5]
    cand = [0.3, 0.4, 0.7, 0.1, 0.3]
    strata = ["text", "text", "text", "image+audio", "image+audio"]
    units = PairedUnits([f"d{i}" for i in range(5)], base, cand, strata, 9, 0, 0, 0)
    result = paired_test(units, integral, margin=0.05, resamples=4000)
    # Δ = 0.1 · (0.1 + 0 + 0.1) / 3 + 0.4 · (−0.4 − 0.2) / 2 = 0.00667 − 0.12
    assert result.delta == pytest.approx(0.1 * 0.2 / 3 - 0.4 * 0.3, abs=1e-15)
    assert result.test == "bootstrap" and result.test_name == "stratified paired bootstrap"
    assert result.strata_units == {"text": 3, "image+audio": 2}
    # Unit weights 0.1/3 and 0.4/2: s² = n · Σ wᵢ² dᵢ².
    weights = np.array([0.1 / 3] * 3 + [0.2] * 2)
    diffs = np.array(cand) - np.array(base)
    assert result.second_moment == pytest.approx(5 * float(np.sum(weights**2 * diffs**2)), abs=1e-15)
    assert result.p_two_sided == paired_sign_flip_p(base, cand, 4000, 0, weights=weights)
    # The image+audio stratum alone: 2 units whose resampled mean difference is −0.4, −0.3 or −0.2.
    assert result.ci_high <= 0.1 * 0.2 - 0.4 * 0.2 + 1e-12 and result.ci_low >= 0.0 - 0.4 * 0.4 - 1e-12
    # p_drop counts resamples at or above 0: none can reach it, so it is 1 / (B + 1).
    assert result.p_drop == 1 / 4001 and result.p_noninferiority > 0.5


def test_sign_flip_with_weights_matches_an_enumeration():
    # 4 units: all 16 sign assignments are equally likely; p → share with |Σ w s d| ≥ observed.
    base, cand, w = [0.0, 0.0, 0.0, 0.0], [0.5, 0.25, -0.125, 1.0], [0.1, 0.2, 0.3, 0.4]
    observed = abs(sum(wi * di for wi, di in zip(w, cand)))
    signs = [[1 if (k >> i) & 1 else -1 for i in range(4)] for k in range(16)]
    exact = sum(abs(sum(s * wi * di for s, wi, di in zip(row, w, cand))) >= observed - 1e-12 for row in signs) / 16
    assert paired_sign_flip_p(base, cand, 200_000, 1, weights=w) == pytest.approx(exact, abs=0.005)


def test_units_are_paired_whole_and_what_was_dropped_is_counted():
    headline = Headline("circular_accuracy", None, "", "right_wrong", "question", 0, unit_score="all")
    base = [rec("q1@0", 1.0, "q1"), rec("q1@1", 1.0, "q1"), rec("q2@0", 1.0, "q2"), rec("q2@1", 0.0, "q2"),
            rec("q3@0", 1.0, "q3"), rec("q4@0", 0.0, "q4")]  # fmt: skip
    cand = [rec("q1@1", 0.0, "q1"), rec("q1@0", 1.0, "q1"), rec("q2@0", 1.0, "q2"), rec("q2@1", 1.0, "q2"),
            rec("q3@0", 1.0, "q3"), rec("q3@1", 1.0, "q3"), rec("q5@0", 1.0, "q5")]  # fmt: skip
    units = pair_units(base, cand, headline)
    # q3 has a rotation more in the candidate: not compared against a part of itself.
    assert (units.ids, units.baseline, units.candidate) == (["q1", "q2"], [1.0, 0.0], [0.0, 1.0])
    assert (units.n_records, units.n_baseline_only, units.n_candidate_only, units.n_mismatched) == (4, 1, 1, 1)
    assert compare_records(base, cand, headline).n_dropped == 3


def rotations(outcomes):
    """Circular records: per question its rotations' right (1.0) or wrong (0.0)."""
    return [rec(f"q{q}@{k}", v, unit=f"q{q}") for q, values in enumerate(outcomes) for k, v in enumerate(values)]


def test_circular_questions_are_resampled_as_units_not_as_independent_rotations(tmp_path):
    # 40 questions of 4 rotations; the candidate loses 10 questions by failing 3 rotations of each together.
    base = rotations([[1.0] * 4] * 30 + [[0.0] * 4] * 10)
    cand = rotations([[1.0] * 4] * 20 + [[1.0, 0.0, 0.0, 0.0]] * 10 + [[0.0] * 4] * 10)
    circular = circular_task(tmp_path).headline(base)
    as_questions = compare_records(base, cand, circular)
    as_items = compare_records(base, cand, default_headline(base))
    assert (as_questions.n_units, as_questions.delta, as_questions.n_baseline_better) == (40, -0.25, 10)
    assert (as_items.n_units, as_items.delta, as_items.n_baseline_better) == (160, -30 / 160, 30)
    assert as_questions.p_two_sided == mcnemar_exact(10, 0) and as_items.p_two_sided == mcnemar_exact(30, 0)
    width = as_questions.ci_high - as_questions.ci_low
    assert width > 1.5 * (as_items.ci_high - as_items.ci_low)


def test_records_of_one_unit_are_never_split():
    # Within each question one rotation gains what another loses: every resample of whole questions has Δ* = 0,
    # while resampling rotations as items would not.
    base = rotations([[1.0, 0.0, 1.0, 0.0]] * 25)
    cand = rotations([[0.0, 1.0, 1.0, 0.0]] * 25)
    mean_per_question = Headline("rotation_accuracy", None, "", "graded", "question", 0, unit_score="mean")
    whole = compare_records(base, cand, mean_per_question)
    assert (whole.ci_low, whole.ci_high, whole.delta, whole.p_two_sided) == (0.0, 0.0, 0.0, 1.0)
    split = compare_records(base, cand, default_headline(base))
    assert split.ci_low < 0 < split.ci_high


def test_dialogs_are_resampled_as_units(tmp_path):
    # 30 text dialogs of 3 turns whose turns move together: the dialog bootstrap sees 30 units, not 90 items.
    rng = random.Random(3)
    base, cand = [], []
    for d in range(30):
        shift = rng.choice([-0.3, 0.0, 0.2])
        for k in range(3):
            score = rng.uniform(0.3, 0.7)
            groups = {"dialog_type": "text", "turn": str(k)}
            base.append(rec(f"d{d}/{k}", score, f"d{d}", groups, metric="meteor"))
            cand.append(rec(f"d{d}/{k}", score + shift, f"d{d}", groups, metric="meteor"))
    integral = dialog_task(tmp_path).headline(base)
    as_dialogs = compare_records(base, cand, integral)
    as_items = compare_records(base, cand, default_headline(base))
    assert (as_dialogs.n_units, as_items.n_units) == (30, 90)
    # One stratum of weight 0.1: Δ is a tenth of the mean turn difference.
    assert as_dialogs.delta == pytest.approx(0.1 * as_items.delta, abs=1e-12)
    assert (as_dialogs.ci_high - as_dialogs.ci_low) > 1.5 * 0.1 * (as_items.ci_high - as_items.ci_low)


def test_noninferiority_p_of_the_bootstrap_counts_resamples_at_or_below_the_margin():
    graded = Headline("vqa_accuracy", None, "", "graded", "item", 0, unit_score="mean")
    rng = np.random.default_rng(1)
    base = rng.random(200)
    cand = base - 0.02 + rng.normal(0, 0.05, 200)
    units = PairedUnits([f"u{i}" for i in range(200)], list(base), list(cand), None, 200, 0, 0, 0)
    result = paired_test(units, graded, margin=0.01, resamples=3000, seed=4)
    resampled = bootstrap_means(np.asarray(cand) - np.asarray(base), 3000, 4)
    assert result.p_noninferiority == (1 + int((resampled <= -0.01).sum())) / 3001
    assert result.p_drop == (1 + int((resampled >= 0).sum())) / 3001
    assert result.ci_low == float(np.quantile(resampled, 0.025))
    z = NormalDist().inv_cdf(0.95) + NormalDist().inv_cdf(0.8)
    diffs = np.asarray(cand) - np.asarray(base)
    assert result.n_needed == int(np.ceil(z * z * float(np.mean(diffs**2)) / 0.01**2))
