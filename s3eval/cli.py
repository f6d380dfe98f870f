"""Command line: ``s3eval run | rescore | leaderboard | compare | gate | view | repair | cache | tasks`` (also
``python run_eval.py …``)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .cli_parser import build_parser


def _cmd_cache(args) -> int:
    from . import cache

    if getattr(args, "cache_dir", None):
        cache.set_cache_root(args.cache_dir)
    found = cache.entries()
    if args.action == "info":
        print(f"cache: {cache.cache_root()} ({len(found)} entr{'y' if len(found) == 1 else 'ies'}, "
              f"{cache.human_size(sum(f.size for f in found))})")
        for item in found:
            print(f"  {cache.describe(item)}")
        return 0
    chosen = [f for f in found if f.current is not True] if args.stale else found
    removed = cache.clear(only=chosen)
    for item in removed:
        print(f"removed {item.path} ({cache.human_size(item.size)})")
    print(f"cache: {cache.cache_root()}: removed {len(removed)} entr{'y' if len(removed) == 1 else 'ies'}, "
          f"{cache.human_size(sum(f.size for f in removed))}")
    return 0 if len(removed) == len(chosen) else 1


def _config_from_args(args):
    """The run config a `run` or `sweep` command line describes: --config, overridden by the flags given."""
    from .config import RunConfig, TaskSpec, config_from_mapping, load_config, parse_key_values

    config = load_config(args.config) if args.config else RunConfig()
    model = getattr(args, "model", None)
    overrides = {
        "model": model, "data": args.data, "limit": args.limit, "batch_size": args.batch_size, "window": args.window,
        "max_new_tokens": args.max_new_tokens, "fallback_seed": args.fallback_seed,
        "output_dir": args.output_dir, "leaderboard": args.leaderboard, "run_name": getattr(args, "run_name", None),
        "threads": args.threads, "cache_dir": args.cache_dir, "media": args.media, "media_seed": args.media_seed,
    }  # fmt: skip
    values = config.to_dict()
    values.update({k: v for k, v in overrides.items() if v is not None})
    if args.stratified:
        values["stratified"] = True
    if args.samples:
        from .selection import read_ids

        values["samples"] = read_ids(args.samples)
    if model and model != config.model:
        values["model_args"] = {}  # another backend's arguments would not apply
    shortcuts = {k: getattr(args, k) for k in ("checkpoint", "base", "dtype", "device") if getattr(args, k, None)}
    values["model_args"] = {**values["model_args"], **parse_key_values(args.model_arg, "--model-arg"), **shortcuts}
    if args.no_leaderboard:
        values["leaderboard"] = None
    values["define"] = [*values["define"], *(d for d in args.define if d not in values["define"])]
    task_args = parse_key_values(args.task_arg, "--task-arg")
    if args.tasks:
        values["tasks"] = [TaskSpec(name.strip(), dict(task_args)) for name in args.tasks.split(",") if name.strip()]
    else:
        values["tasks"] = [TaskSpec(t["name"], {**t["args"], **task_args}) for t in values["tasks"]]
    config = config_from_mapping({k: v for k, v in values.items() if k != "tasks"}, where="flags")
    config.tasks = values["tasks"]
    return config


def _cmd_run(args) -> int:
    from .distributed import Shard, from_torchrun
    from .runner import run

    config = _config_from_args(args)
    shard = Shard()
    if args.distributed:
        shard = from_torchrun()
    outcome = run(config, show_progress=not args.quiet, fresh=args.fresh, fail_fast=args.fail_fast, shard=shard)
    if outcome is None:  # a non-zero rank: rank 0 reports
        return 0
    failed = _report(outcome)
    print(f"run directory: {outcome.run_dir}")
    return 1 if failed else 0


def _report(outcome) -> list:
    """Print what a run did (responses reused, each task's summary, files written, tasks whose every item failed);
    returns the failed tasks' results."""
    from .report import format_summary
    from .runner import all_failed

    failed = [result for result in outcome.tasks if all_failed(result)]
    for task, (reused, total) in outcome.resumed.items():
        if reused and reused == total:
            print(f"{task}: complete, nothing to generate: all {total} responses reused from {outcome.run_dir} "
                  f"(--fresh to redo)")  # fmt: skip
        elif reused:
            print(f"{task}: resumed: {reused} of {total} responses reused, {total - reused} generated")
    for result in outcome.tasks:
        if result.has_gold and result not in failed:
            print(format_summary(result))
        for extra in result.extra_files:
            print(f"{result.task}: wrote {outcome.run_dir / extra}")
    for result in failed:
        print(f"s3eval: error: task {result.task}: all {result.summary['overall']['n']} items failed in the model "
              f"(see `error` in {outcome.run_dir / result.records}); no leaderboard row written", file=sys.stderr)
    return failed


def _cmd_sweep(args) -> int:
    from . import sweep_report
    from .sweep import DONE, SweepError, resolve_checkpoints, run_sweep

    config = _config_from_args(args)
    steps = None
    if args.steps:
        try:
            steps = [int(s) for s in args.steps.split(",") if s.strip()]
        except ValueError:
            raise SweepError(f"--steps takes whole numbers separated by commas, got {args.steps!r}") from None
    checkpoints, base = resolve_checkpoints(args.checkpoints, args.glob, steps, config.model_args.get("base"))
    config.model_args.pop("checkpoint", None)  # each checkpoint of the sweep in turn
    if base:
        config.model_args["base"] = str(base)

    def on_entry(entry) -> None:
        print(f"== step {entry.checkpoint.step}: {entry.checkpoint.path}")
        if entry.status != DONE:
            print(f"skipped: {entry.reason}")
        else:
            _report(entry.outcome)
            print(f"run directory: {entry.run_dir}")

    outcome = run_sweep(config, checkpoints, folder=args.sweep_dir, show_progress=not args.quiet, fresh=args.fresh,
                        fail_fast=args.fail_fast, on_entry=on_entry)  # fmt: skip
    rows = sweep_report.summarize(outcome.entries, args.alpha)
    print(sweep_report.format_table(rows))
    for task, row in sweep_report.best_rows(rows).items():
        print(f"{task}: best checkpoint step {row.step} ({row.checkpoint}): {row.metric} {row.score * 100:.1f}")
    regressions = sweep_report.first_regressions(rows)
    for task, row in regressions.items():
        diff = row.vs_previous
        print(f"{task}: first significant drop at step {row.step} ({row.checkpoint}): {diff.delta * 100:+.1f} points "
              f"vs the checkpoint before (95 % interval {diff.low * 100:+.1f} to {diff.high * 100:+.1f}, one-sided "
              f"p {diff.p_drop:.3g} < {args.alpha})")  # fmt: skip
    if rows and not regressions:
        print(f"no significant drop between consecutive checkpoints (alpha {args.alpha})")
    for path in sweep_report.write(outcome.folder, rows, args.alpha):
        print(f"wrote {path}")
    skipped = [e for e in outcome.entries if e.status != DONE]
    if skipped:
        print(f"{len(skipped)} of {len(outcome.entries)} checkpoint(s) skipped: "
              + ", ".join(str(e.checkpoint.path) for e in skipped), file=sys.stderr)  # fmt: skip
    return 1 if len(skipped) == len(outcome.entries) else 0


def _cmd_rescore(args) -> int:
    from .config import parse_key_values
    from .report import format_summary
    from .rescore import TaskOverrides, rescore_path
    from .runner import write_records
    from .storage import atomic_write_json
    from .task_registry import load_definitions

    for path in args.define:
        load_definitions(path)
    overrides = TaskOverrides(parse_key_values(args.task_arg, "--task-arg"), args.data)
    rescored = rescore_path(args.path, args.task, overrides, args.answer_key, args.fallback_seed, args.drop_missing)
    for item in rescored:
        arguments = ", ".join(f"{k}={v}" for k, v in item.result.arguments.items()) or "defaults"
        print(f"{item.result.task}: {item.source} ({arguments})")
        print(format_summary(item.result))
    if args.output:
        atomic_write_json(args.output, {r.result.task: r.result.to_dict() for r in rescored})
    if args.records_out:
        write_records(args.records_out, [rec for r in rescored for rec in r.records])
    return 0


def _cmd_leaderboard(args) -> int:
    from . import leaderboard

    print(leaderboard.format_table(leaderboard.read(args.path), args.task, args.model, markdown=args.markdown,
                                   wide=args.wide))
    return 0


def _cmd_compare(args) -> int:
    from .compare import (chosen_kinds, compare_runs, describe, format_media_gains, format_rows, load_run,
                          media_gain_rows)  # fmt: skip
    from .compare_report import write_report

    runs = [load_run(p) for p in args.runs]
    rows, flips = compare_runs(runs, args.allow_mismatch, args.alpha)
    gains = media_gain_rows(runs, args.alpha)
    names = [describe(run) for run in runs]
    print("\n".join(f"{'A' if i == 0 else 'B'}{'' if i == 0 else i}: {name}" for i, name in enumerate(names)))
    for mismatch in sorted({f"{r['run_b']}: {r['mismatch']}" for r in rows if r["mismatch"]}):
        print(f"compared with --allow-mismatch although they differ: {mismatch}")
    kinds = chosen_kinds(rows, runs, args.group)
    print(format_rows(rows, kinds))
    print(f"{len(flips)} flipped item(s)")
    if gains:
        print("media gain (with media − without, on paired units; unchanged: share of answers the same without):")
        print(format_media_gains(gains))
    out = args.out or runs[0].path / ("compare-" + "-".join(run.label for run in runs[1:]))
    for path in write_report(rows, flips, out, kinds, names, gains):
        print(f"wrote {path}")
    return 0


def _cmd_gate(args) -> int:
    from .gate import GateError, check, check_media_gain, check_options, check_paired
    from .gate_report import write_json, write_junit

    tasks = [t.strip() for item in args.task for t in item.split(",") if t.strip()]
    if (args.baseline is None) == (args.baseline_run is None):
        raise GateError("gate needs exactly one baseline: --baseline CSV (aggregate leaderboard rows) or "
                        "--baseline-run RUN (paired, unit by unit)")  # fmt: skip
    if (args.ablated_run is None) != (args.min_media_gain is None):
        raise GateError("--ablated-run RUN and --min-media-gain X go together: the media gain of RUN over the same "
                        "checkpoint's run without media must reach X")  # fmt: skip
    context = {"run": str(args.run), "alpha": args.alpha, "tasks": tasks, "require_all": args.require_all}
    if args.baseline_run is not None:
        if args.mode is not None or args.tolerance is not None:
            raise GateError("--mode and --tolerance belong to --baseline CSV; --baseline-run tests non-inferiority "
                            "within --margin")  # fmt: skip
        margin = 0.01 if args.margin is None else args.margin
        context.update(kind="paired", baseline_run=str(args.baseline_run), margin=margin)
        results = check_paired(args.run, args.baseline_run, margin, args.alpha, tasks, args.require_all)
    else:
        if args.margin is not None:
            raise GateError("--margin belongs to --baseline-run RUN; --baseline CSV uses --mode and --tolerance")
        check_options(args.alpha)
        mode, tolerance = args.mode or "test", 0.02 if args.tolerance is None else args.tolerance
        context.update(kind="baseline_csv", baseline=str(args.baseline), mode=mode, tolerance=tolerance)
        results = check(args.run, args.baseline, mode, args.alpha, tolerance, tasks, args.require_all)
    if args.ablated_run is not None:
        context.update(ablated_run=str(args.ablated_run), min_media_gain=args.min_media_gain)
        results += check_media_gain(args.run, args.ablated_run, args.min_media_gain, args.alpha, tasks,
                                    args.require_all)  # fmt: skip
    for result in results:
        print(result.line())
    if args.json:
        write_json(args.json, results, context)
    if args.junit:
        write_junit(args.junit, results)
    return 0 if all(r.passed for r in results) else 1


def _cmd_tasks(args) -> int:
    from .task_registry import load_definitions, task_infos

    for path in args.define:
        load_definitions(path)
    infos = task_infos()
    width = max(len(i.name) for i in infos)
    for info in infos:
        size = "?" if info.size is None else str(info.size)
        print(f"{info.name:<{width}}  {size:>6}  {info.metric}  [{info.data_source}]")
        if args.verbose:
            for name, help_text in info.arguments.items():
                print(f"{'':<{width}}    --task-arg {name}=…  {help_text}")
    return 0


def _cmd_repair(args) -> int:
    from .errors import S3evalError
    from .repair import repair_leaderboard, repair_path

    if (args.path is None) == (args.leaderboard is None):
        raise S3evalError("repair needs either a run directory (or a JSONL file) or --leaderboard PATH")
    for report in [repair_leaderboard(args.leaderboard)] if args.leaderboard else repair_path(args.path):
        print(report.describe())
    return 0


def _cmd_view(args) -> int:
    from .selection import read_ids
    from .viewer import build_view
    from .viewer.build import describe_size

    if args.cache_dir:
        from .cache import set_cache_root

        set_cache_root(Path(args.cache_dir))
    tasks = [t.strip() for item in args.task for t in item.split(",") if t.strip()]
    ids = read_ids(args.samples) if args.samples else None
    outcome = build_view(args.runs, args.out, tasks or None, ids, args.data)
    for notice in outcome.notices:
        print(f"note: {notice}")
    print(f"wrote {outcome.out / 'index.html'}: {outcome.items} items of {', '.join(outcome.tasks)}, "
          f"{outcome.media_files} media files, {describe_size(outcome.bytes)} (open it in a browser; no server needed)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit codes: 0 done, 1 a gate failed or every item of a task failed in the model, 2 an error the user can
    fix (one line on stderr), 70 an internal error, 130 interrupted, 141 output closed early (``| head``)."""
    from .errors import S3evalError

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, so it can be added to any failing command
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    handler = {"run": _cmd_run, "sweep": _cmd_sweep, "rescore": _cmd_rescore, "leaderboard": _cmd_leaderboard, "tasks": _cmd_tasks,
               "compare": _cmd_compare, "gate": _cmd_gate, "cache": _cmd_cache, "repair": _cmd_repair,
               "view": _cmd_view}  # fmt: skip
    try:
        with _quiet_third_party_warnings():
            return handler[args.command](args)
    except BrokenPipeError:
        # The reader (e.g. `head`) has what it wanted; later writes to the closed pipe must not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if debug:
            raise
        print("s3eval: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except S3evalError as exc:
        if debug:
            raise
        print(f"s3eval: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if debug or (exc.name or "").split(".")[0] not in _S3_EXTRA_MODULES:
            raise
        print(f"s3eval: error: the s3 backend needs PyTorch, transformers and ImageBind ({exc}): install them with "
              f"pip install -e '.[s3]'", file=sys.stderr)  # fmt: skip
        return 2
    except Exception as exc:  # a bug, not the user's doing: one line, the traceback with --debug
        if debug:
            raise
        print(f"s3eval: internal error: {type(exc).__name__}: {exc} (run again with --debug for the traceback, "
              f"and please report it)", file=sys.stderr)  # fmt: skip
        return 70


# What `pip install -e '.[s3]'` adds to the light install (scoring and rescoring need none of it).
_S3_EXTRA_MODULES = {"torch", "torchvision", "torchaudio", "transformers", "peft", "imagebind", "safetensors",
                     "sentencepiece", "soundfile", "accelerate", "einops", "timm", "pytorchvideo", "tokenizers",
                     "mistral_common"}  # fmt: skip

# Known third-party notices that say nothing about the user's run (pkg_resources in imagebind, torch.jit, peft's
# note on saving embedding layers); the tests filter the same ones (pyproject.toml).
_THIRD_PARTY_WARNINGS = (
    ("pkg_resources is deprecated", UserWarning),
    ("`torch.jit.script_method` is deprecated", FutureWarning),
    ("Setting `save_embedding_layers` to `True`", UserWarning),
)


@contextlib.contextmanager
def _quiet_third_party_warnings():
    with warnings.catch_warnings():
        for message, category in _THIRD_PARTY_WARNINGS:
            warnings.filterwarnings("ignore", message=re.escape(message), category=category)
        yield


if __name__ == "__main__":
    sys.exit(main())
