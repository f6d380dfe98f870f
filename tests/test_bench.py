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
