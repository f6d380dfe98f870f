"""What `s3eval sweep` saves over one `s3eval run` per checkpoint, measured side by side in one invocation:

1. wall and CPU of one ``s3eval sweep`` process over N checkpoints (default: the 4 of builtin:sanity-steps, built
   first, untimed) vs N ``s3eval run`` processes: same tasks (default sanity_image,sanity_audio, all items) and cache,
   a fresh output dir each; the order alternates over ``--repeats``, medians reported. Per checkpoint: its run's wall
   vs the sweep's share (to the end of its run() from the previous end); media encoded, counted in every child;
2. in-process load times on the tiny shapes: ``load_components`` (split: base LM, adapter, ImageBind, projector) vs
   ``S3Model.switch_checkpoint``; each component's size on disk;
3. an estimate at 7B from the real file sizes and a load rate measured here (a temp safetensors file beside the
   cache, its pages dropped, read back, removed).

    python bench/sweep.py [--repeats 2] [--limit N]
    python bench/sweep.py --checkpoints run/checkpoint-* --base mistral-7b --tasks sanity_image

Writes bench/results/sweep-cpu.json and sweep-cpu.md (``--out``) and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from end_to_end import child  # noqa: E402  (the CLI in a child process: wall, CPU, main()'s own seconds)

# Run in each child before the CLI: counts and times encodes, notes when each checkpoint's run() ends.
INSTRUMENT = """
import atexit, json, time
import s3eval.runner
from s3eval.models.s3.encoders import MediaEncoder
_seen, _encode, _run = {"encodes": 0, "encode_seconds": 0.0, "ends": []}, MediaEncoder.encode, s3eval.runner.run
def _counted(self, kind, inputs):
    start, out = time.perf_counter(), _encode(self, kind, inputs)
    _seen["encodes"] += len(inputs)
    _seen["encode_seconds"] += time.perf_counter() - start
    return out
def _noted(*a, **k):
    out = _run(*a, **k)
    _seen["ends"].append(time.time())
    return out
MediaEncoder.encode, s3eval.runner.run = _counted, _noted
atexit.register(lambda: print("BENCH " + json.dumps(_seen), flush=True))
"""
GB = 1e9
# Mistral-7B-v0.1: (in, out) of each linear LoRA may target, 32 layers; vocabulary 32008 after the S³ resize.
MISTRAL_7B = {"q_proj": (4096, 4096), "k_proj": (4096, 1024), "v_proj": (4096, 1024), "o_proj": (4096, 4096),
              "gate_proj": (4096, 14336), "up_proj": (4096, 14336), "down_proj": (14336, 4096)}  # fmt: skip
PROJECTOR_HIDDEN_7B = 4096  # assumed: the released projector's hidden width is not known here


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(), time.perf_counter() - start


def med(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timing(folders: list[Path], base: Path, args: argparse.Namespace, work: Path) -> list[dict]:
    def go(command: str, targets: list[str], out: Path) -> dict:
        limit = ["--limit", str(args.limit)] if args.limit else []
        argv = [command, *targets, "--base", str(base), "--tasks", args.tasks, "--output-dir", str(out),
                "--no-leaderboard", "--quiet", "--cache-dir", str(args.cache_dir), *limit]  # fmt: skip
        launched = time.time()
        result = child(argv, args.cache_dir, None, INSTRUMENT)
        return {**result, "ends": [round(e - launched, 3) for e in result["ends"]]}  # from the child's launch

    repeats = []
    for r in range(args.repeats):
        order = ["sweep", "separate"] if r % 2 == 0 else ["separate", "sweep"]
        got: dict[str, Any] = {"order": order, "load_average_before": round(os.getloadavg()[0], 2)}
        for kind in order:
            if kind == "sweep":
                got["sweep"] = go("sweep", [str(f) for f in folders], work / f"sweep-{r}")
            else:
                got["separate"] = [go("run", ["--model", "s3", "--checkpoint", str(f)], work / f"run-{r}-{i}")
                                   for i, f in enumerate(folders)]  # fmt: skip
            print(f"repeat {r}: {kind} done", file=sys.stderr, flush=True)
        repeats.append(got)
    return repeats


def loads(folders: list[Path], base: Path, repeats: int) -> dict:
    """Load times in this process (after one untimed load for the imports), medians over ``repeats``."""
    warnings.filterwarnings("ignore", message="pkg_resources|`torch.jit")  # imagebind's imports (as the CLI does)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from s3eval.models.s3.encoders import MediaEncoder, build_imagebind
    from s3eval.models.s3.loading import DTYPES, load_components, resolve_device, resolve_dtype
    from s3eval.models.s3.model import S3Model
    from s3eval.models.s3.projector import build_projector

    def validated(folder: Path) -> S3Model:
        return S3Model.from_args({"checkpoint": str(folder), "base": str(base)})

    model = validated(folders[0])
    first = timed(lambda: model.components)[1]
    spec, facts = model.spec, model.facts
    device = resolve_device(spec)
    dtype = DTYPES[resolve_dtype(spec, device)]
    names = ("validate", "base_lm", "adapter", "imagebind", "projector", "load_components", "switch_checkpoint")
    t: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(repeats):
        t["validate"].append(timed(lambda: validated(folders[0]))[1])
        lm, dt = timed(lambda: AutoModelForCausalLM.from_pretrained(str(spec.base), dtype=dtype))
        dt += timed(lambda: lm.resize_token_embeddings(len(facts.tokenizer), mean_resizing=False))[1]
        t["base_lm"].append(dt)
        t["adapter"].append(timed(lambda: PeftModel.from_pretrained(lm, str(spec.adapter)).to(device).eval())[1])
        ib = lambda: build_imagebind(str(spec.imagebind), facts.imagebind_config)  # noqa: E731
        t["imagebind"].append(timed(lambda: MediaEncoder(ib(), device, DTYPES[spec.encoder_dtype]))[1])
        state = timed(lambda: torch.load(spec.projector, map_location="cpu", weights_only=True))
        t["projector"].append(state[1] + timed(lambda: build_projector(state[0]).to(device, dtype))[1])
        t["load_components"].append(timed(lambda: load_components(spec, facts))[1])
    encoder, kept = model.components.encoder, True
    for folder in (folders[1:] + folders[:1]) * repeats:  # every checkpoint in turn, back to the first
        model, dt = timed(lambda: model.switch_checkpoint({"checkpoint": str(folder), "base": str(base)}))
        t["switch_checkpoint"].append(dt)
        kept = kept and model.components.encoder is encoder
    out: dict[str, Any] = {"first_load_in_process_s": round(first, 3), **{f"{k}_s": med(v) for k, v in t.items()}}
    out["full_load_s"] = round(out["validate_s"] + out["load_components_s"], 3)  # what each separate run pays
    out["load_saved_per_checkpoint_s"] = round(out["full_load_s"] - out["switch_checkpoint_s"], 3)
    out["imagebind_kept_across_switches"] = kept
    out["bytes"] = {"base": size_of(spec.base), "adapter": size_of(spec.adapter), "imagebind": size_of(spec.imagebind),
                    "projector": size_of(spec.projector), "tokenizer": size_of(spec.tokenizer)}  # fmt: skip
    out["adapter_config"] = {k: v for k, v in json.loads((spec.adapter / "adapter_config.json").read_text()).items()
                             if k in ("r", "target_modules", "modules_to_save")}  # fmt: skip
    return out


def read_rate(folder: Path, gib: float) -> dict:
    """GB/s from a ``gib`` GiB safetensors file beside the weights: a raw read and a load_file + copy (loading into
    a model copies too) with the file's pages dropped first (fsync, posix_fadvise DONTNEED: a VM's host may still
    cache it), then load_file + copy again with the pages cached."""
    import torch
    from safetensors.torch import load_file, save_file

    handle, name = tempfile.mkstemp(prefix=".bench-read-rate-", suffix=".safetensors", dir=folder)
    os.close(handle)  # save_file writes a new file in its place
    try:
        save_file({"w": torch.full((int(gib * 2**30) // 2,), 1.5, dtype=torch.bfloat16)}, name)
        size, fd = os.path.getsize(name), os.open(name, os.O_RDONLY)
        raw = lambda: [None for _ in iter(lambda: os.read(fd, 16 << 20), b"")]  # noqa: E731
        load = lambda: [t.clone() for t in load_file(name).values()]  # noqa: E731
        drop = lambda: os.fsync(fd) or os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # noqa: E731
        drop()
        cold_read = timed(raw)[1]
        drop()
        cold, warm = timed(load)[1], timed(load)[1]
        os.close(fd)
    finally:
        os.unlink(name)
    return {"file_GB": round(size / GB, 3), "cold_read": round(size / cold_read / GB, 2),
            "cold_load": round(size / cold / GB, 2), "warm_load": round(size / warm / GB, 2)}  # fmt: skip


def estimate(rates: dict, adapter_config: dict, fixed_s: float, n: int) -> dict:
    r, targets = int(adapter_config.get("r", 8)), adapter_config.get("target_modules") or []
    lora = 32 * sum(r * sum(MISTRAL_7B[m]) for m in targets if m in MISTRAL_7B)
    h = PROJECTOR_HIDDEN_7B
    sizes = {"base": 14.48 * GB, "imagebind": 4.47 * GB, "adapter": (2 * 32008 * 4096 + lora) * 2,
             "projector": 2 * (1024 * h + h + h * 4 * 4096 + 4 * 4096) * 4}  # fmt: skip
    out: dict[str, Any] = {"sizes_GB": {k: round(v / GB, 3) for k, v in sizes.items()}, "rates_GBps": rates,
                           "fixed_per_process_s": fixed_s, "assumptions": (
        f"Mistral-7B-v0.1 safetensors 14.48 GB bf16; imagebind_huge.pth 4.47 GB; adapter in bf16: 2×32008×4096 "
        f"embed_tokens/lm_head + LoRA r={r} on {', '.join(targets)} at 7B shapes ({lora / 1e6:.2f} M params); "
        f"projector fp32, hidden width {h} (assumed); disk to host memory only (no copy to a GPU, no dtype cast); "
        "fixed per process = measured saving per extra checkpoint - tiny load and encode savings")}  # fmt: skip
    for label in ("cold_load", "warm_load"):
        rate, saved = rates[label] * GB, (sizes["base"] + sizes["imagebind"]) / (rates[label] * GB)
        out[label] = {"full_load_per_run_s": round(sum(sizes.values()) / rate, 1),
                      "swap_per_checkpoint_s": round((sizes["adapter"] + sizes["projector"]) / rate, 1),
                      "load_saved_per_checkpoint_s": round(saved, 1), "plus_fixed_s": round(saved + fixed_s, 1),
                      "saved_over_all_s": round((n - 1) * (saved + fixed_s), 1)}  # fmt: skip
    return out


def summarize(repeats: list[dict], n: int) -> dict:
    sweep, sep = [r["sweep"] for r in repeats], [r["separate"] for r in repeats]
    s: dict[str, Any] = {"sweep_wall_s": med([x["wall"] for x in sweep]),
                         "sweep_cpu_s": med([x["cpu"] for x in sweep]),
                         "separate_wall_s": med([sum(x["wall"] for x in runs) for runs in sep]),
                         "separate_cpu_s": med([sum(x["cpu"] for x in runs) for runs in sep])}  # fmt: skip
    saved = s["separate_wall_s"] - s["sweep_wall_s"]
    s.update(ratio_separate_over_sweep=round(s["separate_wall_s"] / s["sweep_wall_s"], 2),
             saved_per_checkpoint_s=round(saved / n, 2), saved_per_extra_checkpoint_s=round(saved / max(n - 1, 1), 2),
             encodes={"sweep": sweep[0]["encodes"], "separate": sum(x["encodes"] for x in sep[0])},
             encode_seconds={"sweep": med([x["encode_seconds"] for x in sweep]),
                             "separate": med([sum(x["encode_seconds"] for x in runs) for runs in sep])})  # fmt: skip
    shares = [[e - b for b, e in zip([0.0, *x["ends"]], x["ends"])] for x in sweep]
    walls = [med([runs[i]["wall"] for runs in sep]) for i in range(n)]
    s["per_checkpoint"] = [{"run_wall_s": w, "sweep_share_s": med([x[i] for x in shares]),
                            "saved_s": round(w - med([x[i] for x in shares]), 2)} for i, w in enumerate(walls)]
    s["sweep_after_last_checkpoint_s"] = med([x["wall"] - x["ends"][-1] for x in sweep])  # summary, plot, exit
    return s


def markdown(rep: dict) -> str:
    s, ld, e = rep["summary"], rep["loads"], rep["estimate_7b"]
    n, runs = len(rep["checkpoints"]), s["per_checkpoint"]
    return "\n".join([
        "# `s3eval sweep` vs one `s3eval run` per checkpoint (CPU, tiny shapes)\n",
        f"`{rep['command']}` — {rep['machine']['cpu_count']} CPUs, load average "
        f"{rep['machine']['load_average_start']} at start; {n} checkpoints; tasks {rep['tasks']}, limit "
        f"{rep['limit'] or 'all'}; medians of "
        f"{len(rep['repeats'])} repeat(s), order alternated\n",
        "| | wall s | CPU s | media encoded | encode s |", "|---|---|---|---|---|",
        f"| one sweep | {s['sweep_wall_s']:.1f} | {s['sweep_cpu_s']:.1f} | {s['encodes']['sweep']} | "
        f"{s['encode_seconds']['sweep']:.2f} |",
        f"| {n} runs | {s['separate_wall_s']:.1f} | {s['separate_cpu_s']:.1f} | {s['encodes']['separate']} | "
        f"{s['encode_seconds']['separate']:.2f} |",
        f"\nseparate / sweep: **{s['ratio_separate_over_sweep']:.2f}×**; saved {s['saved_per_checkpoint_s']:.1f} s "
        f"per checkpoint ({s['saved_per_extra_checkpoint_s']:.1f} s per checkpoint after the first)\n",
        "| checkpoint | run wall s | sweep share s | saved s |", "|---|---|---|---|",
        *[f"| {Path(c).name} | {p['run_wall_s']:.1f} | {p['sweep_share_s']:.1f} | {p['saved_s']:+.1f} |"
          for c, p in zip(rep["checkpoints"], runs)],
        f"| sweep after its last checkpoint (summary, plot, exit) | | {s['sweep_after_last_checkpoint_s']:.1f} | |\n",
        "Loads in this process (s, medians; " + ", ".join(f"{k[:-2]} {v}" for k, v in ld.items() if k.endswith("_s"))
        + f"); ImageBind kept across switches: {ld['imagebind_kept_across_switches']}; bytes: {ld['bytes']}. At "
        "these sizes the times are fixed overheads (process start, imports, module construction), not I/O, and "
        "the files were in the page cache.\n",
        "## Estimate at 7B (an estimate from the inputs below, not a measurement)\n",
        f"Sizes (GB): {e['sizes_GB']}; load rates measured here (GB/s): {e['rates_GBps']}; fixed cost per process "
        f"measured here: {e['fixed_per_process_s']} s. Assumptions: {e['assumptions']}.\n",
        "| rate | full load per run s | swap per checkpoint s | load saved per checkpoint s | + fixed s | "
        f"saved over {n} s |", "|---|---|---|---|---|---|",
        *[f"| {k} ({e['rates_GBps'][k]} GB/s) | " + " | ".join(str(v) for v in e[k].values()) + " |"
          for k in ("cold_load", "warm_load")],
        "\nPer checkpoint after the first the sweep saves ≈ (base + ImageBind) load and pays ≈ (adapter + projector), "
        "which a separate run pays too. Consecutive separate runs of one base may hit a warm page cache (RAM for "
        "≈ 19 GB of files), so the cold row is the upper end; disk cache state decides which row applies.",
    ])  # fmt: skip


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, nargs="+", help="folders (default: builtin:sanity-steps)")
    parser.add_argument("--base", type=Path, help="their base Mistral folder (required with --checkpoints)")
    parser.add_argument("--tasks", default="sanity_image,sanity_audio")
    parser.add_argument("--limit", type=int, help="items per task (default: all)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--load-repeats", type=int, default=3, help="in-process load measurements (medians)")
    parser.add_argument("--read-gib", type=float, default=1.0, help="size of the file the load rate is read from")
    parser.add_argument("--cache-dir", type=Path, help="s3eval cache (default: the user cache)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    from s3eval.cache import cache_root, set_cache_root

    set_cache_root(args.cache_dir)
    args.cache_dir = cache_root()
    machine = {"cpu_count": os.cpu_count(), "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    if args.checkpoints:
        if not args.base:
            parser.error("--checkpoints needs --base")
        folders, base = list(args.checkpoints), args.base
    else:
        from s3eval.models.s3.spec import resolve_builtin_sweep

        folders, base = resolve_builtin_sweep("builtin:sanity-steps")  # built here if needed, untimed
    with tempfile.TemporaryDirectory(prefix="s3eval-bench-sweep-") as tmp:
        repeats = timing(folders, base, args, Path(tmp))
    summary = summarize(repeats, len(folders))
    load = loads(folders, base, args.load_repeats)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    rates = read_rate(args.cache_dir, args.read_gib)
    enc = summary["encode_seconds"]  # what an extra process costs beyond the tiny loads and encodes:
    fixed = round(summary["saved_per_extra_checkpoint_s"] - load["load_saved_per_checkpoint_s"]
                  - (enc["separate"] - enc["sweep"]) / max(len(folders) - 1, 1), 2)  # fmt: skip
    seven_b = estimate(rates, load.pop("adapter_config"), fixed, len(folders))
    report = {"command": " ".join(["python", "bench/sweep.py", *(sys.argv[1:] if argv is None else argv)]),
              "machine": machine, "checkpoints": [str(f) for f in folders], "base": str(base), "tasks": args.tasks,
              "limit": args.limit, "summary": summary, "loads": load, "estimate_7b": seven_b, "repeats": repeats}
    text = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep-cpu.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    (args.out / "sweep-cpu.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
