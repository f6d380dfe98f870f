"""compare and gate (aggregate and paired, media gain, JSON/JUnit) on runs made with scripted models (hand-computed
expectations)."""

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from s3eval.cli import main
from s3eval.compare import CompareError, compare_runs, load_run
from s3eval.config import RunConfig, TaskSpec
from s3eval.models import MODELS
from s3eval.models.base import Model, ModelIdentity
from s3eval.provenance import canonical_hash
from s3eval.runner import run
from s3eval.stats import bootstrap_means
from s3eval.types import Response

from mmmu_snapshot import row, write_snapshot
from test_qa_tasks import define as define_qa

GOLDS = "ABCDABCDAB"  # Art_1..10


@pytest.fixture
def snapshot(tmp_path):
    return write_snapshot(tmp_path / "snap", [row(f"validation_Art_{n}", answer=GOLDS[n - 1]) for n in range(1, 11)])


def make_run(tmp_path, snapshot, answers, name, **task_args):
    responses = tmp_path / f"{name}.json"
    responses.write_text(json.dumps({f"validation_Art_{n}": a for n, a in enumerate(answers, start=1)}))
    config = RunConfig(model="replay", model_args={"responses": str(responses)},
                       tasks=[TaskSpec("mmmu_val", {"subjects": "Art", **task_args})], data=str(snapshot),
                       output_dir=str(tmp_path / "runs"), leaderboard=str(tmp_path / f"{name}.csv"), run_name=name)  # fmt: skip
    return run(config, show_progress=False).run_dir


def test_compare_hand_computed(tmp_path, snapshot):
    a = make_run(tmp_path, snapshot, "ABCDABCDAB", "a")  # 10/10
    b = make_run(tmp_path, snapshot, "ABCDABCDCC", "b")  # Art_9, Art_10 wrong: 8/10
    rows, flips = compare_runs([load_run(a), load_run(b)])
    overall = rows[0]
    assert (overall["n"], overall["accuracy_a"], overall["accuracy_b"]) == (10, 1.0, 0.8)
    assert overall["delta"] == pytest.approx(-0.2)
    assert (overall["only_a_correct"], overall["only_b_correct"]) == (2, 0)
    assert overall["p_value"] == pytest.approx(0.5)  # 2 · (1/2)^2
    assert overall["significant"] is False
    assert overall["ci_low"] < -0.2 < overall["ci_high"] <= 0
    assert [f["sample_id"] for f in flips] == ["validation_Art_9", "validation_Art_10"]
    assert {r["group"] for r in rows if r["group_kind"] == "discipline"} == {"Art and Design"}


def test_compare_refuses_mismatched_runs(tmp_path, snapshot):
    a = make_run(tmp_path, snapshot, "ABCDABCDAB", "a")
    b = make_run(tmp_path, snapshot, "ABCDABCDAB", "b", image_mode="referenced", answer_key="dataset")
    with pytest.raises(CompareError, match=r"not comparable .*\n  mmmu_val prompt_mode: 'official-first-image' vs "
                                           r"'official-referenced-images'\n  mmmu_val answer_key: 'current' vs 'dataset'"):
        compare_runs([load_run(a), load_run(b)])
    rows, _ = compare_runs([load_run(a), load_run(b)], allow_mismatch=True)
    assert rows[0]["delta"] == 0


def test_compare_cli_writes_report(tmp_path, snapshot, capsys):
    a = make_run(tmp_path, snapshot, "ABCDABCDAB", "a")
    b = make_run(tmp_path, snapshot, "DDDDDDDDDD", "b")
    c = make_run(tmp_path, snapshot, "ABCDABCDCC", "c")
    assert main(["compare", str(a), str(b), str(c), "--out", str(tmp_path / "cmp")]) == 0
    out = capsys.readouterr().out
    assert "2 flipped" not in out and "flipped item(s)" in out
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert html.startswith("<!doctype html>") and "data:image/png;base64," in html
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "validation_Art_9" in (tmp_path / "cmp" / "flipped.csv").read_text()


def test_gate_test_and_tolerance_modes(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")  # 10/10, writes good.csv
    worse = make_run(tmp_path, snapshot, "ABCDABCDCC", "worse")  # 8/10
    broken = make_run(tmp_path, snapshot, "DDDDDDDDDD", "broken")  # 2/10
    baseline = tmp_path / "good.csv"
    # P(X ≤ 8 | n = 10, p = 1.0) = 0 < alpha: any drop from a perfect baseline is significant.
    assert main(["gate", str(worse), "--baseline", str(baseline)]) == 1
    assert "FAIL mmmu_val: accuracy 8/10 items = 0.8000 vs baseline 1.0000" in capsys.readouterr().out
    assert main(["gate", str(good), "--baseline", str(baseline)]) == 0
    assert main(["gate", str(worse), "--baseline", str(baseline), "--mode", "tolerance", "--tolerance", "0.25"]) == 0
    assert main(["gate", str(broken), "--baseline", str(tmp_path / "worse.csv")]) == 1
    # 8/10 against a 0.8 baseline: P(X ≤ 8 | 10, 0.8) = 0.62 ≥ 0.05.
    capsys.readouterr()
    assert main(["gate", str(worse), "--baseline", str(tmp_path / "worse.csv")]) == 0
    assert "P(≤ 8 | baseline rate) = 0.624" in capsys.readouterr().out


def test_gate_skips_tasks_without_a_baseline_row_unless_all_are_required(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")
    other = tmp_path / "other.csv"
    other.write_text((tmp_path / "good.csv").read_text().replace(",mmmu_val,", ",mmmu_dev,"))
    assert main(["gate", str(good), "--baseline", str(other)]) == 0
    assert capsys.readouterr().out == f"SKIP mmmu_val: no baseline row for task 'mmmu_val' in {other}\n"
    assert main(["gate", str(good), "--baseline", str(other), "--require-all"]) == 1
    assert capsys.readouterr().out.startswith("FAIL mmmu_val: no baseline row")
    assert main(["gate", str(good), "--baseline", str(other), "--task", "mmmu_val,nope"]) == 2
    assert "has no task 'nope'" in capsys.readouterr().err


def test_compare_of_non_mmmu_runs_groups_each_task_its_own_way_and_names_the_runs(tmp_path, capsys):
    def sanity_run(answer, name, **options):
        config = RunConfig(model="constant", model_args={"answer": answer},
                           tasks=[TaskSpec("sanity_image"), TaskSpec("sanity_audio")], limit=4,
                           output_dir=str(tmp_path / "runs"), leaderboard=None, run_name=name, **options)  # fmt: skip
        return run(config, show_progress=False).run_dir

    # Another model without the media: the media differ and so does the model, so no media gain; refused.
    a, b = sanity_run("A", "ra"), sanity_run("B", "rb", media="withhold")
    assert main(["compare", str(a), str(b)]) == 2
    assert "sanity_image: 4 shared items have different media" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--allow-mismatch"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("A: ra: model constant") and out[0].endswith(f", {a}")
    assert out[1].startswith("B1: rb: model constant") and out[1].endswith(f", {b}")
    assert out[2] == ("compared with --allow-mismatch although they differ: rb: sanity_audio: 4 shared items have "
                      "different media, e.g. ['test_audio_0', 'test_audio_1', 'test_audio_2']")
    assert not any(line.startswith("media gain") for line in out)
    folder = a / "compare-rb"
    table = pd.read_csv(folder / "compare.csv")
    assert set(table["task"]) == {"sanity_image", "sanity_audio"}
    assert table["mismatch"].str.contains("shared items have different media").all()
    assert not (folder / "media_gain.csv").exists()
    assert set(table.loc[table["group_kind"] != "overall", "group_kind"]) == {"modality"}
    html = (folder / "compare.html").read_text()
    assert "<li>ra: model constant" in html and "Compared with --allow-mismatch" in html
    assert (folder / "compare.png").stat().st_size > 10_000


def test_gate_refuses_results_written_before_the_result_model(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")
    results = json.loads((good / "results.json").read_text())
    for task in results["tasks"].values():
        task.pop("kind"), task.pop("headline")
    (good / "results.json").write_text(json.dumps(results))
    assert main(["gate", str(good), "--baseline", str(tmp_path / "good.csv")]) == 2
    err = capsys.readouterr().err
    assert "task 'mmmu_val' was written by an older s3eval without the result model; run the run's command again" in err


# --- the paired gate (--baseline-run), the media gain, and unit-aware compare rows ---------------------------


class MediaAwareModel(Model):
    """Replays its responses where the request holds media and answers ``blind`` where it holds none: a model
    whose score the media carry, for ablated runs (``--media withhold``)."""

    arguments = {"responses": "{id: response} JSON", "blind": "the answer without media"}

    def __init__(self, responses: str, blind: str) -> None:
        self.responses, self.blind = json.loads(Path(responses).read_text()), blind
        self.identity = ModelIdentity(name="media_aware", checkpoint_hash=canonical_hash([self.responses, blind]))

    @classmethod
    def from_args(cls, args):
        cls.check_args("media_aware", args, required=["responses", "blind"])
        return cls(args["responses"], args["blind"])

    def generate(self, requests):
        return [Response(text=self.responses[r.sample_id] if r.media else self.blind) for r in requests]


if "media_aware" not in MODELS:
    MODELS.register("media_aware", MediaAwareModel)


def media_run(tmp_path, snapshot, name, media="keep", blind="D"):
    responses = tmp_path / "seen.json"
    responses.write_text(json.dumps({f"validation_Art_{n}": a for n, a in enumerate(GOLDS, start=1)}))
    config = RunConfig(model="media_aware", model_args={"responses": str(responses), "blind": blind},
                       tasks=[TaskSpec("mmmu_val", {"subjects": "Art"})], data=str(snapshot),
                       output_dir=str(tmp_path / "runs"), leaderboard=None, run_name=name, media=media)  # fmt: skip
    return run(config, show_progress=False).run_dir


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("s3eval: error: "), captured.err
    return captured.err


def power_n(share: float, margin: float, alpha: float = 0.05) -> int:
    z = NormalDist().inv_cdf(1 - alpha) + NormalDist().inv_cdf(0.8)
    return math.ceil(z * z * share / margin**2)


def test_paired_gate_needs_evidence_of_non_inferiority(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")  # 10/10
    worse = make_run(tmp_path, snapshot, "ABCDABCDCC", "worse")  # Art_9, Art_10 wrong: b = 2, c = 0 of n = 10
    # Δ = −0.2; π0 = (1 − 0.01 · 10 / 2) / 2 = 0.475, p = P(X ≥ 0) = 1; s² = 2/10.
    assert main(["gate", str(worse), "--baseline-run", str(good)]) == 1
    low, high = np.quantile(bootstrap_means(np.array([0.0] * 8 + [-1.0] * 2), 2000, 0), [0.025, 0.975])
    assert capsys.readouterr().out == (
        f"FAIL mmmu_val: Δ accuracy -0.2000 [{low:+.4f}, {high:+.4f}] (0.8000 vs baseline 1.0000, 10 paired items); "
        f"exact McNemar: non-inferiority p = 1 ≥ α 0.05 at margin 0.01; n needed for 80 % power: "
        f"{power_n(0.2, 0.01)} (this run: 10)\n")  # fmt: skip
    # The same run: no discordant item, Δ = 0 exactly, inside any positive margin.
    assert main(["gate", str(good), "--baseline-run", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS mmmu_val: Δ accuracy +0.0000 [+0.0000, +0.0000]")
    assert out.endswith("non-inferiority p = 0 < α 0.05 at margin 0.01; n needed for 80 % power: cannot be "
                        "estimated (no discordant items) (this run: 10)\n")  # fmt: skip
    # Better by 2 items (b = 0, c = 2): at margin 0.15, π0 = (1 − 0.15 · 10 / 2) / 2 = 1/8, p = (1/8)² = 1/64.
    assert main(["gate", str(good), "--baseline-run", str(worse), "--margin", "0.15"]) == 0
    assert "non-inferiority p = 0.0156 < α 0.05 at margin 0.15" in capsys.readouterr().out
    assert main(["gate", str(good), "--baseline-run", str(worse), "--margin", "0.15", "--alpha", "0.01"]) == 1


def test_paired_gate_writes_json_and_junit(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")
    worse = make_run(tmp_path, snapshot, "ABCDABCDCC", "worse")
    keep = media_run(tmp_path, snapshot, "keep")
    blind = media_run(tmp_path, snapshot, "blind", media="withhold")
    report, xml_path = tmp_path / "gate.json", tmp_path / "gate.xml"
    assert main(["gate", str(worse), "--baseline-run", str(good), "--json", str(report), "--junit", str(xml_path)]) == 1
    data = json.loads(report.read_text())
    assert (data["kind"], data["margin"], data["alpha"], data["passed"]) == ("paired", 0.01, 0.05, False)
    [entry] = data["results"]
    assert (entry["task"], entry["check"], entry["status"], entry["test"], entry["n_units"]) == (
        "mmmu_val", "non-inferiority", "FAIL", "mcnemar", 10)
    assert (entry["delta"], entry["p_noninferiority"], entry["n_needed"]) == (-0.2, 1.0, power_n(0.2, 0.01))
    assert (entry["n_baseline_better"], entry["n_candidate_better"], entry["second_moment"]) == (2, 0, 0.2)
    suite = ET.parse(xml_path).getroot()
    assert (suite.tag, suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "testsuite", "s3eval.gate", "1", "1", "0")
    [case] = suite.findall("testcase")
    assert (case.get("classname"), case.get("name")) == ("s3eval.gate.non-inferiority", "mmmu_val")
    assert case.find("failure").get("message").startswith("Δ accuracy -0.2000 [")
    capsys.readouterr()
    # The media gain as a second check: its own testcase, passing here.
    assert main(["gate", str(keep), "--baseline-run", str(keep), "--ablated-run", str(blind), "--min-media-gain",
                 "0.5", "--junit", str(xml_path), "--json", str(report)]) == 0  # fmt: skip
    suite = ET.parse(xml_path).getroot()
    assert [(c.get("classname"), c.get("name")) for c in suite.findall("testcase")] == [
        ("s3eval.gate.non-inferiority", "mmmu_val"), ("s3eval.gate.media_gain", "mmmu_val")]
    assert suite.get("failures") == "0" and all(c.find("failure") is None for c in suite)
    gain = json.loads(report.read_text())["results"][1]
    assert (gain["check"], gain["delta"], gain["min_gain"], gain["media"]) == ("media gain", 0.8, 0.5, "withhold")
    # The aggregate gate writes them too.
    assert main(["gate", str(worse), "--baseline", str(tmp_path / "good.csv"), "--junit", str(xml_path)]) == 1
    case = ET.parse(xml_path).getroot().find("testcase")
    assert case.get("classname") == "s3eval.gate.baseline" and case.find("failure") is not None


def test_paired_gate_skips_tasks_the_baseline_run_lacks_and_refuses_incomparable_runs(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")
    config = RunConfig(model="constant", tasks=[TaskSpec("sanity_image")], limit=4, leaderboard=None,
                       output_dir=str(tmp_path / "runs"), run_name="other")  # fmt: skip
    other = run(config, show_progress=False).run_dir
    xml_path = tmp_path / "skip.xml"
    assert main(["gate", str(good), "--baseline-run", str(other), "--junit", str(xml_path)]) == 0
    assert capsys.readouterr().out == f"SKIP mmmu_val: the baseline run {other} has no task 'mmmu_val'\n"
    case = ET.parse(xml_path).getroot().find("testcase")
    assert case.find("skipped") is not None and ET.parse(xml_path).getroot().get("skipped") == "1"
    assert main(["gate", str(good), "--baseline-run", str(other), "--require-all"]) == 1
    assert capsys.readouterr().out.startswith("FAIL mmmu_val: the baseline run")
    referenced = make_run(tmp_path, snapshot, "ABCDABCDAB", "referenced", image_mode="referenced")
    assert main(["gate", str(good), "--baseline-run", str(referenced)]) == 2
    err = one_line_error(capsys)
    assert f"{good} and {referenced} are not comparable: mmmu_val prompt_mode: 'official-referenced-images' vs " in err


@pytest.mark.parametrize("flags,message", [
    ([], "gate needs exactly one baseline: --baseline CSV (aggregate leaderboard rows) or --baseline-run RUN"),
    (["--baseline", "B.csv", "--baseline-run", "R"], "gate needs exactly one baseline"),
    (["--baseline-run", "R", "--min-media-gain", "0.1"], "--ablated-run RUN and --min-media-gain X go together"),
    (["--baseline-run", "R", "--ablated-run", "A"], "--ablated-run RUN and --min-media-gain X go together"),
    (["--baseline-run", "R", "--tolerance", "0.1"], "--mode and --tolerance belong to --baseline CSV"),
    (["--baseline", "B.csv", "--margin", "0.1"], "--margin belongs to --baseline-run RUN"),
    (["--baseline-run", "R", "--margin", "1.5"], "--margin is a difference of scores in [0, 1)"),
    (["--baseline-run", "R", "--alpha", "0"], "--alpha must lie between 0 and 1, got 0.0"),
])  # fmt: skip
def test_gate_option_errors_are_one_line(tmp_path, snapshot, capsys, flags, message):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")
    flags = [str(good) if f == "R" else f for f in flags]
    assert main(["gate", str(good), *flags]) == 2
    assert message in one_line_error(capsys)


def test_paired_gate_refuses_a_unit_headline_written_before_unit_scores(tmp_path, snapshot, capsys):
    good = make_run(tmp_path, snapshot, "ABCDABCDAB", "good")
    old = tmp_path / "runs" / "old"
    shutil.copytree(good, old)
    results = json.loads((old / "results.json").read_text())
    headline = results["tasks"]["mmmu_val"]["headline"]
    headline["unit"] = "question"  # as a circular task's was
    del headline["unit_score"], headline["strata"], headline["strata_weights"]
    (old / "results.json").write_text(json.dumps(results))
    assert main(["gate", str(good), "--baseline-run", str(old)]) == 2
    assert one_line_error(capsys) == (
        f"s3eval: error: {old / 'results.json'}: task 'mmmu_val': the accuracy headline was written before s3eval "
        f"recorded how a question's score is made; run the run's command again: it reuses every response and "
        f"rewrites results.json\n")  # fmt: skip


def test_media_gain_in_gate_and_compare(tmp_path, snapshot, capsys):
    keep = media_run(tmp_path, snapshot, "keep")  # 10/10 with the images
    blind = media_run(tmp_path, snapshot, "blind", media="withhold")  # "D" without: Art_4, Art_8 right, 2/10
    # Gain 0.8: 8 items only the keep run got right, none the other way.
    assert main(["gate", str(keep), "--baseline-run", str(keep), "--ablated-run", str(blind),
                 "--min-media-gain", "0.9"]) == 1  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    low, high = np.quantile(bootstrap_means(np.array([1.0] * 8 + [0.0] * 2), 2000, 0), [0.025, 0.975])
    assert lines[0].startswith("PASS mmmu_val: Δ accuracy +0.0000")
    assert lines[1] == (f"FAIL mmmu_val media gain: accuracy 1.0000 with media − 0.2000 with media withhold = +0.8000 "
                        f"[{low:+.4f}, {high:+.4f}] < minimum 0.9 (10 paired items)")  # fmt: skip
    # Differing only in the media mode, the runs are compared without --allow-mismatch, with the media gain.
    out_dir = tmp_path / "cmp"
    assert main(["compare", str(keep), str(blind), "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "media gain (with media − without" in out and "compared with --allow-mismatch" not in out
    table = pd.read_csv(out_dir / "media_gain.csv")
    assert table.to_dict("records") == [{
        "task": "mmmu_val", "run_keep": "keep", "run_ablated": "blind", "media": "withhold", "metric": "accuracy",
        "unit": "item", "n_units": 10, "score_keep": 1.0, "score_ablated": 0.2, "gain": 0.8, "ci_low": low,
        "ci_high": high, "test": "mcnemar", "p_value": 2 / 2**8, "n_items": 10, "unchanged_share": 0.2}]  # fmt: skip
    assert "<h2>Media gain</h2>" in (out_dir / "compare.html").read_text()
    # The ablated run first: the gain is still the keep run's score minus the other's.
    from s3eval.compare import load_run as load, media_gain_rows

    assert media_gain_rows([load(blind), load(keep)])[0]["gain"] == 0.8


def test_media_gain_needs_the_same_checkpoint_ablated(tmp_path, snapshot, capsys):
    keep = media_run(tmp_path, snapshot, "keep")
    other_model = media_run(tmp_path, snapshot, "other", media="withhold", blind="C")
    flags = ["--baseline-run", str(keep), "--min-media-gain", "0.1", "--ablated-run"]
    assert main(["gate", str(keep), *flags, str(other_model)]) == 2
    assert "is another checkpoint" in one_line_error(capsys)
    assert main(["gate", str(keep), *flags, str(keep)]) == 2
    assert f"--ablated-run {keep} kept its media; give a run made with --media withhold" in one_line_error(capsys)
    # A different model is no media ablation: compare refuses it, naming the media.
    assert main(["compare", str(keep), str(other_model)]) == 2
    assert "mmmu_val: 10 shared items have different media" in capsys.readouterr().err


def test_compare_rows_pair_circular_questions_as_units(tmp_path, capsys):
    name = define_qa(tmp_path, circular=True)

    def qa_run(model, name_, **model_args):
        config = RunConfig(model=model, model_args=model_args, tasks=[TaskSpec(name)], leaderboard=None,
                           output_dir=str(tmp_path / "runs"), run_name=name_)  # fmt: skip
        return run(config, show_progress=False).run_dir

    answers = tmp_path / "right.json"
    answers.write_text(json.dumps({"1@0": "A", "1@1": "C", "1@2": "B", "2@0": "B", "2@1": "A"}))  # every rotation
    a, b = qa_run("constant", "letter_a", answer="A"), qa_run("replay", "right", responses=str(answers))
    rows, flips = compare_runs([load_run(a), load_run(b)])
    overall = rows[0]
    # A: rotations right [T, F, F, F, T] (0 of 2 questions); B: all 5 (2 of 2).
    assert (overall["unit"], overall["n_units"], overall["n"]) == ("question", 2, 5)
    assert (overall["accuracy_a"], overall["accuracy_b"]) == (0.4, 1.0)
    assert (overall["score_a"], overall["score_b"]) == (0.0, 1.0)
    assert (overall["delta"], overall["only_a_correct"], overall["only_b_correct"]) == (1.0, 0, 2)
    assert (overall["test"], overall["p_value"]) == ("mcnemar", 0.5)
    assert len(flips) == 3
    by_category = {r["group"]: r for r in rows if r["group_kind"] == "category"}
    assert {g: (r["n_units"], r["n"], r["score_b"]) for g, r in by_category.items()} == {
        "colour": (1, 3, 1.0), "shape": (1, 2, 1.0)}
