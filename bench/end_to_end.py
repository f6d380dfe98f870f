"""Wall and CPU time of whole `s3eval run` jobs (the timing tests/test_s3_release.py used to assert, < 60 s):

- ``mmmu_mini`` — the run of test_end_to_end_on_mmmu_mini: the built-in tiny release on the 90 items of
  ../shared/mmmu_mini (``mmmu_val``, batch 16); the release is built into the cache first, not timed;
- ``readme`` — the README's main job (``--checkpoint builtin:sanity`` on the five built-in sets) in an empty
  cache (first use: the tiny release is built and the sanity checkpoint trained), then again with the cache warm.

Each job runs in a fresh child process (``python -c``) so its CPU time can be read; ``--threads N`` sets torch's
thread count there (default: the project's rule, s3eval/threads.py).

    python bench/end_to_end.py                        # both scenarios
    python bench/end_to_end.py --scenario readme --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MMMU_MINI = ROOT.parent / "shared" / "mmmu_mini"
README_TASKS = "sanity_image,sanity_audio,vqa_builtin_images,aqa_builtin_sounds,aij_builtin_dialogs"

CHILD = """
import json, sys, time
from s3eval.cache import set_cache_root
from s3eval.threads import apply_threads
set_cache_root({cache!r})
threads = apply_threads({threads})
{before}
from s3eval.cli import main
start = time.perf_counter()
code = main({argv!r})
print("BENCH " + json.dumps({{"seconds": time.perf_counter() - start, "rc": code, "threads": threads}}))
"""


def child(argv: list[str], cache: Path, threads: Optional[int], before: str = "") -> dict:
    """Run the CLI with ``argv`` in a child process; its wall and CPU seconds, and main()'s own seconds."""
    code = CHILD.format(cache=str(cache), threads=threads, argv=argv, before=before)
    start, usage0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    wall, usage = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    result = {"wall": round(wall, 1),
              "cpu": round(usage.ru_utime - usage0.ru_utime + usage.ru_stime - usage0.ru_stime, 1)}  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            result.update(json.loads(line[6:]))
    result["seconds"] = round(result["seconds"], 1)
    return result


def mmmu_mini(work: Path, cache: Path, threads: Optional[int]) -> dict:
    if not MMMU_MINI.is_dir():
        return {"skipped": f"{MMMU_MINI} is absent"}
    from s3eval.cache import set_cache_root

    set_cache_root(cache)
    from s3eval.models.s3.builder import ensure_builtin

    checkpoint, base = ensure_builtin()  # built once, not timed (the test's session fixture does the same)
    argv = ["run", "--model", "s3", "--checkpoint", str(checkpoint), "--base", str(base), "--tasks", "mmmu_val",
            "--data", str(MMMU_MINI), "--output-dir", str(work / "runs"), "--leaderboard", str(work / "lb.csv"),
            "--run-name", "tiny", "--batch-size", "16", "--quiet"]  # fmt: skip
    return child(argv, cache, threads)


def readme(work: Path, cache: Path, threads: Optional[int]) -> dict:
    out = {}
    for label in ("first use (empty cache)", "cache warm"):
        argv = ["run", "--model", "s3", "--checkpoint", "builtin:sanity", "--tasks", README_TASKS,
                "--output-dir", str(work / label[:5]), "--leaderboard", str(work / "lb.csv"), "--quiet"]  # fmt: skip
        out[label] = child(argv, cache / "readme", threads)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["mmmu_mini", "readme"], nargs="+", default=["mmmu_mini", "readme"])
    parser.add_argument("--threads", type=int, help="torch threads in the child (default: the project's rule)")
    args = parser.parse_args(argv)
    report = {"cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
              "load_average_before": round(os.getloadavg()[0], 2)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="s3eval-bench-e2e-") as tmp:
        work, cache = Path(tmp), Path(tmp) / "cache"
        for scenario in args.scenario:
            measure = {"mmmu_mini": mmmu_mini, "readme": readme}[scenario]
            report[scenario] = measure(work / scenario, cache, args.threads)
            print(f"{scenario}: {json.dumps(report[scenario])}", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
