"""The harness itself at VQAv2 scale (≈ 214,000 validation questions): a synthetic set of ``--items`` items run end
to end with the ``constant`` backend (no model cost), so what is measured is s3eval: loading the set, building
requests, hashing media, response keys, the response log (fsynced per batch), scoring, writing records, results
and the leaderboard row.

Two sets of the same size, written once into ``--workdir``: text items (multiple choice, 4 options) and small-image
items (the same, each with one 8×8 PNG; ``--images`` distinct files, shared by several questions as VQAv2's
≈ 40,000 images are). Reported, each stage in its own process:

- ``run``: wall seconds and items/s of ``s3eval run`` (process start to exit), peak resident memory (ru_maxrss);
- ``resume``: the same run killed with SIGKILL once ``--kill-at`` responses are in the log, then the same command
  again: seconds of the resumed run; its per-sample records must equal the uninterrupted run's (timings aside);
- ``rerun``: the finished run once more ("complete, nothing to generate");
- ``rescore`` and ``leaderboard``: seconds of ``s3eval rescore RUN_DIR`` and ``s3eval leaderboard``;
- ``--profile``: the text run once more under pyinstrument (``pip install pyinstrument``; cProfile when it is
  absent), its slowest functions written beside the results.

    python bench/scale.py --items 200000 --kill-at 150000      # ≈ 10 minutes on 2 cores
    python bench/scale.py --items 2000 --kill-at 1500 --out /tmp/scale   # a smoke run

Writes bench/results/scale-<items>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def png(rgb: tuple[int, int, int], size: int = 8) -> bytes:
    """A tiny valid PNG of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * size)) + chunk(b"IEND", b"")


def write_sets(workdir: Path, items: int, images: int, seed: int = 0) -> Path:
    """The two sets and their definition file (reused when already written for these sizes)."""
    stamp = workdir / f".complete-{items}-{images}"
    definitions = workdir / "scale_sets.yaml"
    if stamp.exists():
        return definitions
    if workdir.exists():
        shutil.rmtree(workdir)
    rng = random.Random(seed)
    (workdir / "image" / "images").mkdir(parents=True)
    (workdir / "text").mkdir(parents=True)
    for k in range(images):
        (workdir / "image" / "images" / f"{k}.png").write_bytes(png((k % 256, (k // 256) % 256, (k // 65536) % 256)))
    categories = ["colour", "count", "shape", "place", "time", "other"]
    for kind in ("text", "image"):
        with open(workdir / kind / "questions.jsonl", "w", encoding="utf-8") as out:
            for i in range(items):
                row = {"id": f"{kind}-{i}", "question": f"Question {i}: which option fits the {kind} best?",
                       "choices": [f"option {c} of {i}" for c in "ABCD"], "answer": "ABCD"[rng.randrange(4)],
                       "category": categories[i % len(categories)]}  # fmt: skip
                if kind == "image":
                    row["image"] = f"images/{i % images}.png"
                out.write(json.dumps(row) + "\n")
    definitions.write_text(
        "tasks:\n"
        "  - {name: scale_text, path: text, modality: text, question_type: choice, metric: choice_letter}\n"
        "  - {name: scale_image, path: image, modality: image, question_type: choice, metric: choice_letter}\n"
    )
    stamp.write_text("")
    return definitions


def child(argv: list[str], rusage_file: str) -> None:
    """Run the s3eval CLI in this process and record its peak resident memory."""
    from s3eval.cli import main

    code = 1
    try:
        code = main(argv)
    finally:
        Path(rusage_file).write_text(json.dumps({"code": code, "peak_rss_mib": round(peak_rss_kib() / 1024, 1)}))
    sys.exit(code)


def peak_rss_kib() -> int:
    """This process's peak resident memory: VmHWM (ru_maxrss would include the parent's peak at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def timed(argv: list[str], tmp: Path, profile: Optional[Path] = None) -> dict:
    """Run one s3eval command in a fresh process: its seconds, exit code and peak memory."""
    rusage = tmp / f"rusage-{time.monotonic_ns()}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(rusage), "--", *argv]
    if profile is not None:
        command = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile), *command[1:]] \
            if _has_pyinstrument() else [sys.executable, "-m", "cProfile", "-o", str(profile), *command[1:]]  # fmt: skip
    t0 = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    out = {"seconds": round(seconds, 2)}
    if rusage.exists():
        out.update(json.loads(rusage.read_text()))
    out["stdout"] = result.stdout.strip().splitlines()[-3:]
    return out


def _has_pyinstrument() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyinstrument") is not None


def killed_at(argv: list[str], log: Path, lines: int) -> dict:
    """Start the run, SIGKILL it once the response log holds ``lines`` responses; how many it held then."""
    process = subprocess.Popen([sys.executable, str(ROOT / "run_eval.py"), *argv], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    seen, offset = 0, 0
    while process.poll() is None and seen < lines:
        time.sleep(0.02)
        if log.exists():
            with open(log, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            seen += chunk.count(b"\n")
    finished = process.poll() is not None
    if not finished:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return {"responses_at_kill": seen, "finished_before_kill": finished}


def records(run_dir: Path, task: str) -> list[dict]:
    with open(run_dir / f"samples_{task}.jsonl", encoding="utf-8") as f:
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in f]


def measure(task: str, items: int, definitions: Path, work: Path, kill_at: int, window: Optional[int]) -> dict:
    tmp = work / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    base = ["run", "--model", "constant", "--model-arg", "answer=B", "--define", str(definitions), "--tasks", task,
            "--quiet"] + (["--window", str(window)] if window else [])  # fmt: skip

    def args(name: str) -> list[str]:
        return [*base, "--output-dir", str(work / name), "--leaderboard", str(work / f"{name}.csv")]

    for name in ("full", "killed"):
        shutil.rmtree(work / name, ignore_errors=True)
        (work / f"{name}.csv").unlink(missing_ok=True)
    report: dict = {"task": task, "items": items}
    report["run"] = timed(args("full"), tmp)
    report["run"]["items_per_s"] = round(items / report["run"]["seconds"], 1)
    (run_dir,) = [p for p in (work / "full").iterdir() if p.is_dir()]
    report["rerun"] = timed(args("full"), tmp)
    report["rescore"] = timed(["rescore", str(run_dir)], tmp)
    report["leaderboard"] = timed(["leaderboard", "--path", str(work / "full.csv"), "--task", task], tmp)
    if kill_at:
        kill = killed_at(args("killed"), work / "killed" / run_dir.name / "responses.jsonl", kill_at)
        resumed = timed(args("killed"), tmp)
        (killed_dir,) = [p for p in (work / "killed").iterdir() if p.is_dir()]
        same = records(killed_dir, task) == records(run_dir, task)
        report["resume"] = {**kill, **resumed, "records_equal_uninterrupted": same}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--images", type=int, default=40_000, help="distinct image files of the image set")
    parser.add_argument("--kill-at", type=int, default=150_000, help="responses in the log when the run is killed "
                        "(0: no kill-and-resume measurement)")
    parser.add_argument("--sets", default="text,image", help="which sets to run (text, image)")
    parser.add_argument("--window", type=int, help="the runner's --window (default: s3eval's)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/s3eval-scale"))
    parser.add_argument("--profile", action="store_true", help="profile the text run (pyinstrument or cProfile)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        child(rest[1:] if rest[:1] == ["--"] else rest, args.child)
        return
    t0 = time.perf_counter()
    definitions = write_sets(args.workdir / "sets", args.items, min(args.images, args.items))
    report = {"items": args.items, "images": min(args.images, args.items),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
              "set_written_s": round(time.perf_counter() - t0, 1),
              "command": "python bench/scale.py " + " ".join(sys.argv[1:]), "sets": []}  # fmt: skip
    for kind in args.sets.split(","):
        entry = measure(f"scale_{kind}", args.items, definitions, args.workdir / kind, args.kill_at, args.window)
        report["sets"].append(entry)
        print(json.dumps(entry, indent=1), flush=True)
    if args.profile:
        profile = args.out / f"scale-{args.items}-profile.txt"
        args.out.mkdir(parents=True, exist_ok=True)
        work = args.workdir / "profile"
        shutil.rmtree(work, ignore_errors=True)
        timed(["run", "--model", "constant", "--define", str(definitions), "--tasks", "scale_text", "--quiet",
               "--output-dir", str(work), "--no-leaderboard"], args.workdir, profile=profile)  # fmt: skip
        report["profile"] = profile.name
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"scale-{args.items}"
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / f"{name}.md").write_text(markdown(report))
    print(f"wrote {args.out / name}.json and .md")


def markdown(report: dict) -> str:
    lines = [f"# s3eval at scale: {report['items']:,} items per set, constant backend", "",
             f"Machine: {report['machine']}. Image set: {report['images']:,} distinct 8×8 PNGs. Every figure is "
             "one process from start to exit (interpreter start and imports included).", "",
             "| set | run s | items/s | peak RSS MiB | killed at | resume s | resumed = uninterrupted | re-run s | rescore s | leaderboard s |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in report["sets"]:
        resume = s.get("resume", {})
        lines.append(f"| {s['task']} | {s['run']['seconds']} | {s['run']['items_per_s']} | "
                     f"{s['run'].get('peak_rss_mib', '-')} | {resume.get('responses_at_kill', '-')} | "
                     f"{resume.get('seconds', '-')} | {resume.get('records_equal_uninterrupted', '-')} | "
                     f"{s['rerun']['seconds']} | {s['rescore']['seconds']} | {s['leaderboard']['seconds']} |")  # fmt: skip
    if report.get("profile"):
        lines += ["", f"Profile of the text run: `{report['profile']}`."]
    lines += ["", f"Re-run: `{report['command']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
