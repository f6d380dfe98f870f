"""The throughput benchmark runs end to end at tiny shapes (its numbers are measured by running it, not here)."""

import json
import subprocess
import sys

from conftest import MMMU_MINI, ROOT, need


def test_benchmark_smoke(tmp_path):
    need(MMMU_MINI)
    command = [sys.executable, str(ROOT / "bench" / "throughput.py"), "--shape", "tiny", "--items", "8",
               "--new-tokens", "2", "--batch-size", "4", "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    report = json.loads((tmp_path / "cpu-tiny.json").read_text())
    (entry,) = report["runs"]
    assert entry["naive"]["items"] == entry["engine"]["items"] == 8
    assert entry["identical_outputs"].startswith("8/8")  # fp32 on CPU: merging LoRA changed no greedy token
    assert entry["engine_warm_cache"]["encoder_seconds"] < entry["engine"]["encoder_seconds"]
    assert (tmp_path / "cpu-tiny.md").read_text().startswith("# S³ throughput, tiny shapes")


def test_sweep_benchmark_smoke(tmp_path, sanity_steps):
    from s3eval.cache import cache_root

    checkpoints, base = sanity_steps
    command = [sys.executable, str(ROOT / "bench" / "sweep.py"), "--checkpoints", *map(str, checkpoints[:2]),
               "--base", str(base), "--limit", "4", "--repeats", "1", "--load-repeats", "1", "--read-gib", "0.01",
               "--cache-dir", str(cache_root()), "--out", str(tmp_path)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    report = json.loads((tmp_path / "sweep-cpu.json").read_text())
    summary = report["summary"]
    assert len(summary["per_checkpoint"]) == 2 and len(report["repeats"]) == 1
    assert summary["encodes"]["separate"] == 2 * summary["encodes"]["sweep"] > 0  # the sweep encodes each medium once
    assert report["loads"]["imagebind_kept_across_switches"]
    assert {"cold_load", "warm_load", "sizes_GB"} <= set(report["estimate_7b"])
    assert (tmp_path / "sweep-cpu.md").read_text().startswith("# `s3eval sweep` vs one `s3eval run`")
