"""The throughput benchmarks run end to end at small sizes and report what they promise; their numbers are
measured by running them (bench/results/), never asserted here."""

import json
import subprocess
import sys

from conftest import MMMU_MINI, ROOT, need


def test_throughput_bench_measures_naive_engine_runner_likelihood_and_dtypes(tmp_path):
    """The 7B-shape script at tiny shapes on CPU, with every comparison it makes on a GPU."""
    need(MMMU_MINI)
    command = [sys.executable, str(ROOT / "bench" / "throughput.py"), "--device", "cpu", "--shape", "tiny",
               "--items", "6", "--new-tokens", "2", "--batch-size", "4", "--likelihood-items", "4",
               "--flip-items", "4", "--static-cache", "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    report = json.loads((tmp_path / "cpu-tiny.json").read_text())
    (entry,) = report["runs"]
    assert entry["naive"]["items"] == entry["engine"]["items"] == entry["runner"]["items"] == 6
    assert entry["identical_outputs"] == "6/6" and entry["runner_identical_to_engine"] == "6/6"  # fp32
    runner = entry["runner"]
    assert runner["errors"] == 0 and runner["gpu_batches"] >= 1 and runner["token_budget"] > 0
    assert entry["options"]["static_cache"]["identical_to_engine"] == "6/6"
    likelihood = {x["candidates"]: x for x in report["likelihood"]}
    assert set(likelihood) == {4, 8} and likelihood[8]["scored"] == 32
    assert all(x["max_abs_mean_nll_diff"] <= 1e-5 for x in likelihood.values())  # shared prefix == full forward
    dtypes = report["dtypes"]
    assert dtypes["items"] == 4 and 0 <= dtypes["answer_flips"] <= 4 and 0 <= dtypes["ranking_flips"] <= 4
    text = (tmp_path / "cpu-tiny.md").read_text()
    assert "runner items/s" in text and "shared prefix" in text and "bfloat16 vs float32" in text


def test_scale_bench_runs_kills_resumes_rescores(tmp_path):
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--items", "3000", "--images", "50",
               "--kill-at", "1000", "--window", "500", "--workdir", str(tmp_path / "work"), "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    report = json.loads((tmp_path / "scale-3000.json").read_text())
    assert [s["task"] for s in report["sets"]] == ["scale_text", "scale_image"]
    for entry in report["sets"]:
        assert entry["run"]["code"] == 0 and entry["run"]["items_per_s"] > 0 and entry["run"]["peak_rss_mib"] > 0
        assert "complete, nothing to generate" in " ".join(entry["rerun"]["stdout"]) or entry["rerun"]["code"] == 0
        resume = entry["resume"]
        assert resume["records_equal_uninterrupted"] is True and resume["code"] == 0
        assert resume["responses_at_kill"] >= 1000 or resume["finished_before_kill"]
        assert entry["rescore"]["code"] == 0 and entry["leaderboard"]["code"] == 0
    assert (tmp_path / "scale-3000.md").read_text().startswith("# s3eval at scale: 3,000 items per set")
