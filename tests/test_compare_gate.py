"""compare and gate on runs made with scripted models (hand-computed expectations)."""

import json

import pandas as pd
import pytest

from s3eval.cli import main
from s3eval.compare import CompareError, compare_runs, load_run
from s3eval.config import RunConfig, TaskSpec
from s3eval.runner import run

from mmmu_snapshot import row, write_snapshot

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
    def sanity_run(answer, name, **task_args):
        config = RunConfig(model="constant", model_args={"answer": answer},
                           tasks=[TaskSpec("sanity_image", task_args), TaskSpec("sanity_audio", task_args)], limit=4,
                           output_dir=str(tmp_path / "runs"), leaderboard=None, run_name=name)  # fmt: skip
        return run(config, show_progress=False).run_dir

    a, b = sanity_run("A", "ra"), sanity_run("B", "rb", media="withhold")
    assert main(["compare", str(a), str(b)]) == 2  # the media mode differs: refused, naming it
    assert "prompt_mode" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--allow-mismatch"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("A: ra: model constant") and out[0].endswith(f", {a}")
    assert out[1].startswith("B1: rb: model constant") and out[1].endswith(f", {b}")
    assert out[2].startswith("compared with --allow-mismatch although they differ: rb: sanity_audio prompt_mode")
    folder = a / "compare-rb"
    table = pd.read_csv(folder / "compare.csv")
    assert set(table["task"]) == {"sanity_image", "sanity_audio"} and table["mismatch"].str.contains("prompt_mode").all()
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
