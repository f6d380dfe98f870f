import pytest

from s3eval.aggregate import summarize
from s3eval.scoring import MetricError, score_records
from s3eval.types import Record


def rec(sid, response, gold="B", answer_type="choice", choices=("x", "y", "z", "w"), group="g1", **kw):
    return Record(task="t", sample_id=sid, answer_type=answer_type, choices=list(choices), gold=gold,
                  groups={"group": group}, response=response, **kw)  # fmt: skip


def test_fallbacks_draw_in_record_order():
    records = [rec("1", "no idea"), rec("2", "B"), rec("3", "no idea")]
    score_records(records)
    assert [(r.parsed, r.parse_rule, r.fallback) for r in records] == [
        ("A", "fallback", True), ("B", "space", False), ("A", "fallback", True),
    ]  # fmt: skip
    # Reversing the order changes which item gets which draw, exactly as in the official script.
    reversed_records = [rec("3", "no idea"), rec("1", "no idea")]
    score_records(reversed_records, seed=7)
    assert [r.parsed for r in reversed_records] == ["C", "B"]


def test_given_predictions_are_not_parsed():
    records = [rec("1", "B", response_kind="prediction"), rec("2", "The answer is B", response_kind="prediction")]
    score_records(records)
    assert [(r.parsed, r.correct) for r in records] == [("B", True), ("The answer is B", False)]


def test_errors_and_missing_gold():
    records = [
        rec("1", None, error="bad row", error_kind="data"),
        rec("2", "B", gold=None),
        rec("3", "so it is 12", gold="12", answer_type="open", choices=()),
    ]
    score_records(records)
    assert [r.correct for r in records] == [False, None, True]
    no_gold_error = [rec("4", None, gold=None, error="bad row", error_kind="data")]
    score_records(no_gold_error)
    assert no_gold_error[0].correct is False
    assert records[2].parsed == [12.0] and records[2].parser_version == "1.0.0"


def test_summary_counts_and_variants():
    records = [
        rec("1", "B"),  # right
        rec("2", "C"),  # wrong
        rec("3", "no idea"),  # fallback → A, wrong, chance 1/4
        rec("4", "nothing at all", gold="A", group="g2"),  # fallback → A, right, chance 1/4
        rec("5", None, error="x", error_kind="data", group="g2"),
        rec("6", None, error="missing", error_kind="missing", group="g2"),
    ]
    score_records(records)
    s = summarize(records, ["group"])
    o = s["overall"]
    assert (o["n"], o["correct"], o["n_fallback"], o["n_error"], o["n_missing"], o["n_valid"]) == (6, 2, 2, 1, 1, 4)
    assert o["accuracy"] == 2 / 6
    assert o["accuracy_valid"] == 2 / 4
    assert o["strict_accuracy"] == 1 / 6
    assert o["expected_accuracy"] == (1 + 0.25 + 0.25) / 6
    assert s["groups"]["group"]["g1"]["correct"] == 1 and s["groups"]["group"]["g2"]["n"] == 3


def test_instance_weighted_and_ordered_groups():
    records = [rec(str(i), "B", group="small") for i in range(2)] + [rec(str(i + 2), "C", group="big") for i in range(8)]
    score_records(records)
    s = summarize(records, ["group"], order={"group": ["big", "small"]})
    assert list(s["groups"]["group"]) == ["big", "small"]
    assert s["overall"]["accuracy"] == 0.2  # Σ correct / Σ n, not the mean of 1.0 and 0.0


@pytest.mark.parametrize("metric, record_kw, expected", [
    # (score, correct, parsed)
    ("choice_likelihood", dict(choices=("x", "y", "z"), gold="B", candidate_nll=[0.9, 0.2, 0.5]), (1.0, True, "B")),
    ("choice_likelihood", dict(choices=("x", "y"), gold="B", candidate_nll=[0.3, 0.3]), (0.0, False, "A")),
    ("likelihood_proxy", dict(answer_type="open", gold="r", candidate_nll=[0.1, 0.4, 0.2]), (1.0, True, None)),
    ("likelihood_proxy", dict(answer_type="open", gold="r", candidate_nll=[0.2, 0.2]), (0.0, False, None)),
    ("exact_match", dict(answer_type="open", gold=["yes"], response="Yep."), (1.0, True, "Yep.")),
    ("token_set", dict(choices=("A woman", "A man"), gold="A woman", response="a woman"), (1.0, True, "a woman")),
    ("vqa_accuracy", dict(answer_type="open", gold=["2"] * 2 + ["3"] * 8, response="two"), (0.6, None, "two")),
    # Officially (2017 code) ground truths keep their whitespace; the 2021 code trims them.
    ("vqa_accuracy_2017", dict(answer_type="open", gold=["x-ray"] * 4 + [" \tx-ray"], response="x-ray"),
     (1.0, None, "x-ray")),
    ("vqa_accuracy_2021", dict(answer_type="open", gold=["x-ray"] * 4 + [" \tx-ray"], response="x-ray"),
     (1.0, None, "x-ray")),
    ("circular_choice", dict(choices=("x", "y"), gold="B", response="(B)"), (1.0, True, "B")),
    ("circular_choice", dict(choices=("x", "y"), gold="A", response="no idea"), (0.0, False, None)),
    # METEOR of a 1-word exact hit is 0.5 (one chunk per match); the proxy half is 1: mean 0.75.
    ("meteor+likelihood_proxy", dict(answer_type="open", gold=["Paris"], response="Paris", candidate_nll=[0.0, 1.0]),
     (0.75, None, "Paris")),
])  # fmt: skip
def test_metrics_by_name(metric, record_kw, expected):
    kw = {"response": None, **record_kw}
    record = rec("1", metric=metric, **kw)
    score_records([record])
    assert (record.score, record.correct, record.parsed) == (pytest.approx(expected[0], abs=1e-12), *expected[1:])
    assert record.metric_version is not None


def test_combined_metric_keeps_its_parts_and_errors_score_zero():
    record = rec("1", "Paris", answer_type="open", gold=["Paris"], metric="meteor+likelihood_proxy",
                 candidate_nll=[0.0, 1.0])  # fmt: skip
    failed = rec("2", None, answer_type="open", gold=["Paris"], metric="meteor", error="boom", error_kind="model")
    score_records([record, failed])
    assert record.scores == {"meteor": 0.5, "likelihood_proxy": 1.0}
    assert (failed.score, failed.correct) == (0.0, None)


def test_unknown_metric_suggests_the_near_one():
    with pytest.raises(MetricError, match="unknown metric 'meter': did you mean 'meteor'"):
        score_records([rec("1", "x", metric="meter")])


def test_graded_scores_average_into_accuracy():
    records = [rec(str(i), "two", answer_type="open", gold=["2"] * 2 + ["3"] * 8, metric="vqa_accuracy")
               for i in range(2)] + [rec("9", "3", answer_type="open", gold=["3"] * 10, metric="vqa_accuracy")]  # fmt: skip
    score_records(records)
    overall = summarize(records, ["group"])["overall"]
    assert overall["accuracy"] == pytest.approx((0.6 + 0.6 + 1.0) / 3) and overall["correct"] == 0


def test_every_metric_declares_its_kind_and_aggregation():
    from s3eval.scoring import GRADED, RIGHT_WRONG, kind_of, metrics

    assert {name: m.kind for name, m in metrics().items()} == {
        "parser": RIGHT_WRONG, "circular_choice": RIGHT_WRONG, "choice_likelihood": RIGHT_WRONG,
        "likelihood_proxy": RIGHT_WRONG, "vqa_accuracy_2017": GRADED, "vqa_accuracy_2021": GRADED,
        "exact_match": RIGHT_WRONG, "token_set": RIGHT_WRONG, "meteor": GRADED,
    }  # fmt: skip
    assert {m.aggregation for m in metrics().values()} == {"mean"}
    assert kind_of("meteor+likelihood_proxy") == GRADED and kind_of(None) == RIGHT_WRONG
    assert kind_of("vqa_accuracy") == GRADED  # records written before the versions existed


def test_an_unknown_metric_is_a_user_error():
    from s3eval.errors import S3evalError

    with pytest.raises(S3evalError, match="unknown metric 'meteorr': did you mean 'meteor'"):
        score_records([rec("1", "x", metric="meteorr")])
