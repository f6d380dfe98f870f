"""How torch's thread count changes CPU time on this machine, idle and beside a CPU-bound process: the evidence
behind the default rule in s3eval/threads.py.

Workloads, each in a fresh child process (torch.set_num_threads(N) first, then the work):
- train — training the built-in sanity checkpoint (``tasks.sanity.checkpoint.train``) into a temporary folder;
- eval  — ``s3eval run`` of sanity_image + sanity_audio (200 items) on a checkpoint trained beforehand.
Loads: idle (nothing added by the benchmark: other users of the machine are not stopped, so the load average
is reported beside every run) and busy (one ``python -c "while True: pass"`` beside the work).
Per run: wall seconds, CPU seconds of the child (user + system: spinning threads show up here) and the load
average before it; per workload and load: the median over ``--repeat`` runs and the N-thread / 1-thread ratios.

    python bench/threads.py                               # train + eval, 1 and 2 threads, idle and busy
    python bench/threads.py --workload train --repeat 3 --threads 1 2 4
    python bench/threads.py --code /path/to/old/checkout  # the same measurement of another checkout's code

Writes bench/results/threads-<host>.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads({threads})
try:  # this project's code: record the choice so nothing re-applies the default rule
    from s3eval.threads import apply_threads
    apply_threads({threads})
except ImportError:  # an older checkout (--code) without s3eval.threads
    pass
start = time.perf_counter()
"""
TRAIN = PRELUDE + """
from tasks.sanity.checkpoint import train
import inspect
kwargs = {{"progress": False}} if "progress" in inspect.signature(train).parameters else {{}}
train(Path({out!r}), 0, **kwargs)
print("BENCH " + json.dumps({{"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}}))
"""
EVAL = PRELUDE + """
from s3eval.cli import main
code = main(["run", "--model", "s3", "--checkpoint", {checkpoint!r}, "--base", {base!r},
             "--tasks", "sanity_image,sanity_audio", "--output-dir", {out!r}, "--no-leaderboard", "--run-name", "r",
             "--quiet", "--fresh"])
print("BENCH " + json.dumps({{"seconds": time.perf_counter() - start, "threads": torch.get_num_threads(), "rc": code}}))
"""


def run_child(code: str, cwd: Path, timeout: float, log: Path) -> dict:
    """Run ``python -c code`` in ``cwd``; wall and CPU seconds (from wait4, the child's own rusage)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(cwd)
    with open(log, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                proc.send_signal(signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    result = {"wall": round(wall, 2), "cpu": round(usage.ru_utime + usage.ru_stime, 2), "timed_out": timed_out,
              "rc": proc.returncode}  # fmt: skip
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("BENCH "):
            result.update(json.loads(line[6:]))
    if proc.returncode != 0 and not timed_out:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"benchmark child failed (rc {proc.returncode}); log {log}:\n{tail}")
    return result


def measure(workload: str, threads: int, load: str, code_dir: Path, work: Path, timeout: float,
            release: Optional[tuple[str, str]]) -> dict:  # fmt: skip
    out = tempfile.mkdtemp(prefix=f"{workload}-{threads}t-{load}-", dir=work)
    if workload == "train":
        code = TRAIN.format(threads=threads, out=str(Path(out) / "release"))
    else:
        assert release is not None
        code = EVAL.format(threads=threads, checkpoint=release[0], base=release[1], out=out)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
    try:
        before = os.getloadavg()[0]
        result = run_child(code, code_dir, timeout, Path(out + ".log"))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    result.update(workload=workload, threads=threads, load=load, loadavg_before=round(before, 2), folder=out)
    return result


def fmt(values: list[dict], key: str) -> str:
    shown = [v[key] for v in values if not v["timed_out"]]
    if len(shown) < len(values):
        return f">{max(v['wall'] for v in values):.0f}" if key == "wall" else "–"
    return f"{statistics.median(shown):.1f}"


def table(results: list[dict], threads: list[int]) -> str:
    head = ["workload", "load"] + [f"wall {n}t" for n in threads] + [f"cpu {n}t" for n in threads]
    head += [f"wall {n}t/1t" for n in threads if n != 1] + ["runs", "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for workload in dict.fromkeys(r["workload"] for r in results):
        for load in dict.fromkeys(r["load"] for r in results):
            cell = {n: [r for r in results if (r["workload"], r["load"], r["threads"]) == (workload, load, n)]
                    for n in threads}  # fmt: skip
            if not all(cell.values()):
                continue
            row = [workload, load] + [fmt(cell[n], "wall") for n in threads] + [fmt(cell[n], "cpu") for n in threads]
            one = cell[1] if 1 in cell else None
            for n in threads:
                if n == 1:
                    continue
                if one and not any(r["timed_out"] for r in one + cell[n]):
                    ratio = statistics.median(r["wall"] for r in cell[n]) / statistics.median(r["wall"] for r in one)
                    row.append(f"{ratio:.2f}×")
                else:
                    row.append("≥ " + f"{min(r['wall'] for r in cell[n]) / max(r['wall'] for r in one):.1f}×"
                               if one and not any(r["timed_out"] for r in one) else "–")  # fmt: skip
            loads = [r["loadavg_before"] for n in threads for r in cell[n]]
            row += [str(len(cell[threads[0]])), f"{min(loads):.1f}–{max(loads):.1f}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["train", "eval", "both"], default="both")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (1 is always added)")
    parser.add_argument("--load", choices=["idle", "busy"], nargs="+", default=["idle", "busy"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (the table shows medians)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is stopped and shown as >T")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose code is measured (default: this one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    args = parser.parse_args(argv)
    threads = sorted({1, *args.threads})
    workloads = ["train", "eval"] if args.workload == "both" else [args.workload]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="s3eval-bench-threads-") as tmp:
        work = Path(tmp)
        release = None
        if "eval" in workloads:
            print("training a checkpoint for the eval workload …", file=sys.stderr, flush=True)
            first = measure("train", 1, "idle", args.code, work, args.timeout, None)
            release = (str(Path(first["folder"]) / "release" / "s3"), str(Path(first["folder"]) / "release" / "base"))
        for repeat in range(args.repeat):
            for workload in workloads:
                for load in args.load:
                    for n in threads:
                        result = measure(workload, n, load, args.code, work, args.timeout, release)
                        result["repeat"] = repeat
                        results.append(result)
                        stopped = " (stopped)" if result["timed_out"] else ""
                        print(f"{workload:5} {load:4} {n} thread(s): wall {result['wall']:.1f} s{stopped}, "
                              f"cpu {result['cpu']:.1f} s, load average before {result['loadavg_before']:.1f}",
                              file=sys.stderr, flush=True)  # fmt: skip
    report = table(results, threads)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# torch threads: {platform.node()}, {cpus} usable CPUs, code {args.code}\n\n{report}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"threads-{platform.node() or 'host'}.json"
    path.write_text(json.dumps({"host": platform.node(), "cpus": cpus, "code": str(args.code), "runs": results,
                                "table": report}, indent=1) + "\n")  # fmt: skip
    print(f"\nwrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
