"""The command line's argument parser: every subcommand, flag, default and help text (the handlers are in
``s3eval.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import __version__

EPILOG = """examples:
  s3eval tasks
  s3eval run --model s3 --checkpoint builtin:sanity --tasks sanity_image,sanity_audio
  s3eval run --model s3 --checkpoint builtin:tiny --tasks mmmu_val --data ../shared/mmmu_mini
  s3eval run --model s3 --checkpoint S3_DIR --base MISTRAL_DIR --tasks mmmu_val_all_images
  s3eval run --model constant --model-arg answer=A --tasks mmmu_val --data ../shared/mmmu_mini
  s3eval run --config run.yaml --limit 20
  s3eval sweep builtin:sanity-steps --tasks sanity_image,sanity_audio
  s3eval rescore results/runs/<run-id>
  s3eval rescore total_val_output.json --task mmmu_val --answer-key answer_dict_val.json
  s3eval leaderboard --task mmmu_val --markdown
  s3eval compare results/runs/RUN_A results/runs/RUN_B
  s3eval gate results/runs/RUN --baseline results/baseline.csv
  s3eval gate results/runs/RUN --baseline-run results/runs/BASELINE --margin 0.01 --junit gate.xml
  s3eval view results/runs/RUN_A results/runs/RUN_B
  s3eval repair results/runs/RUN
  s3eval cache info
"""


def _run_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="evaluate a model on tasks",
        description="Evaluate a model on tasks. Values from --config (YAML, same keys as the long flags with "
        "underscores) are overridden by the flags given. Writes a run directory with per-sample JSONL and "
        "results.json, and appends one leaderboard row per task. The run directory is named after the model and "
        "the config hash: running the same command again resumes an interrupted run, reusing every response "
        "already produced (--fresh starts over).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="config example:\n  model: replay\n  model_args: {responses: out.json}\n  tasks:\n    - mmmu_val\n"
        "    - {name: mmmu_dev_all_images, args: {subjects: 'Art,Music'}}\n  data: ../shared/mmmu_mini\n  limit: 50",
    )
    p.add_argument("--config", type=Path, help="YAML run config")
    p.add_argument("--model", help="model backend: s3 (default; with no --checkpoint the built-in tiny release), "
                   "constant, replay")
    p.add_argument("--checkpoint", help="s3: the release folder, or a built-in tiny release made on first use: "
                   "builtin:sanity (trained on the sanity sets) or builtin:tiny (random weights); same as "
                   "--model-arg checkpoint=… (default builtin:tiny)")
    _evaluation_flags(p)
    p.add_argument("--run-name", help="run directory name (default: <model>-<config hash>, so a re-run resumes)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel under torchrun: each process takes a shard, rank 0 merges and scores "
                   "(e.g. torchrun --nproc-per-node 8 run_eval.py run --distributed …)")


def _sweep_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="evaluate every checkpoint of a training run, the base model loaded once",
        description="Evaluate S³ checkpoints of one training run: the base Mistral, ImageBind and the tokenizer are "
        "loaded once and each checkpoint's LoRA adapter (with its embed_tokens/lm_head copies) and projector are "
        "swapped in, after the same validation `run` does; ImageBind is frozen, so each image and sound is encoded "
        "once for the whole sweep. Each checkpoint is an ordinary run — the run directory and leaderboard rows "
        "`s3eval run --checkpoint CKPT` would write — so an interrupted sweep resumes where it stopped when run "
        "again. A checkpoint that fails validation is reported and skipped. Writes sweep.csv (per checkpoint and "
        "task: score, 95 % interval, paired difference by unit against the previous and the best checkpoint), "
        "sweep.png and summary.json into the sweep folder, and names the best checkpoint and the first "
        "significant drop per task.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  s3eval sweep builtin:sanity-steps --tasks sanity_image,sanity_audio\n"
        "  s3eval sweep --glob 'train/checkpoint-*' --base MISTRAL_DIR --tasks mmmu_val --data DIR\n"
        "  s3eval sweep train/checkpoint-500 train/final --steps 500,1000 --base MISTRAL_DIR --tasks mmmu_val",
    )  # fmt: skip
    p.add_argument("checkpoints", nargs="*", metavar="CKPT",
                   help="S³ checkpoint folders (released layout), or one built-in series: builtin:sanity-steps "
                   "(the sanity trainer's checkpoints, with their own base)")
    p.add_argument("--glob", metavar="PATTERN", help="also every folder matching PATTERN, e.g. 'train/checkpoint-*'")
    p.add_argument("--steps", metavar="N,N,…",
                   help="the checkpoints' training steps in the order given (default: read from the folder names, "
                   "e.g. checkpoint-1200)")
    p.add_argument("--sweep-dir", type=Path,
                   help="where sweep.csv, sweep.png and summary.json go (default <output-dir>/sweep-<sweep id>)")
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the paired drop tests between checkpoints (default 0.05)")
    p.add_argument("--config", type=Path, help="YAML run config (its model must be s3; its checkpoint is ignored)")
    _evaluation_flags(p)


def _evaluation_flags(p) -> None:
    """The flags `run` and `sweep` share: what to evaluate, how, and where results go."""
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="backend argument, repeatable (s3: see README; constant: answer=A; replay: responses=FILE)")
    p.add_argument("--base", help="s3: the base Mistral-7B-v0.1 folder (same as --model-arg base=…)")
    p.add_argument("--dtype", help="s3: float32, bfloat16 or float16 (default bf16 on GPU, fp32 on CPU)")
    p.add_argument("--device", help="s3: torch device, e.g. cuda:0 or cpu")
    p.add_argument("--tasks", help="comma-separated task names (see `s3eval tasks`)")
    p.add_argument("--define", action="append", default=[], metavar="YAML",
                   help="register the tasks a YAML definition file declares (your own VQA/AQA or dialog sets; "
                        "format in README), repeatable")
    p.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="argument for every task named in --tasks, repeatable (e.g. subjects=Art,Music or subjects=Science)")
    p.add_argument("--data", help="dataset location for the tasks: a local folder or a hub id")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples of each task, in canonical order "
                   "(default: all)")
    p.add_argument("--stratified", action="store_true",
                   help="with --limit N: N items spread across the task's groups (MMMU subjects, set categories, "
                   "dialog types; whole dialogs) instead of the first N")
    p.add_argument("--samples", nargs="+", metavar="ID",
                   help="evaluate only these items: sample ids (a dialog id takes all its turns, a turn its earlier "
                   "turns), comma- or space-separated, or @FILE with one id per line")
    p.add_argument("--batch-size", metavar="N|auto",
                   help="GPU batch: requests the model runs at once. N caps it; auto (the s3 default) forms batches "
                   "by a token budget that grows until memory says stop (CUDA out-of-memory or a near-full peak) "
                   "and is remembered. Each batch's responses are stored durably as it completes. Changes speed, "
                   "not results (fp32 outputs do not depend on it), so it is not part of the run id; same as "
                   "--model-arg batch_size=…")
    p.add_argument("--window", type=int, help="requests the runner hands the model per call (default 4096; the "
                   "model sorts them by cost and batches them itself); bounds memory, not part of the run id")
    p.add_argument("--media", metavar="MODE",
                   help="media ablation for every task with media: keep (default) sends the media as given; "
                   "withhold sends each request without its media, text kept; noise replaces each image by a random "
                   "RGB PNG and each audio clip by a Gaussian-noise 16 kHz WAV, seeded; shuffle gives each item "
                   "another item's media of the same kind (a seeded derangement within the task). Recorded in "
                   "results.json and the leaderboard's media column and part of the run id, so an ablated run gets "
                   "its own run directory; `s3eval compare KEEP_RUN ABLATED_RUN` reports the media gain")
    p.add_argument("--media-seed", type=int, metavar="N",
                   help="seed of --media noise and shuffle (default 0); part of the run id for those modes")
    p.add_argument("--max-new-tokens", type=int, help="generation budget, overriding task and model defaults "
                   "(default: the task's, else the model's: 32 for s3)")
    p.add_argument("--fallback-seed", type=int, help="seed of the parser's random fallback (official: 42)")
    p.add_argument("--output-dir", help="where run directories go (default results/runs)")
    p.add_argument("--leaderboard", help="leaderboard CSV to append to (default results/leaderboard.csv)")
    p.add_argument("--no-leaderboard", action="store_true", help="do not append leaderboard rows")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: 1 on machines with at most 2 usable cores, "
                   "else all but one; torch's own default stalls when another process shares the cores)")
    p.add_argument("--cache-dir", help="the user cache of built-in releases and sets (default $XDG_CACHE_HOME/s3eval "
                   "or ~/.cache/s3eval; `s3eval cache info` lists it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--fresh", action="store_true",
                   help="ignore responses an earlier run of the same config left (default: resume from them)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first sample error instead of recording it and going on")


def _rescore_parser(sub) -> None:
    p = sub.add_parser(
        "rescore",
        help="score saved responses without a model",
        description="Re-parse and re-score saved responses. PATH is an s3eval run directory or samples_*.jsonl "
        "(each task is rebuilt with the arguments and definition files its run recorded; --task-arg and --data "
        "override them), or (with --task mmmu_*) an official MMMU eval-only JSON {id: prediction} or a folder of "
        "official <Subject>/output.json raw outputs.",
    )
    p.add_argument("path", type=Path)
    p.add_argument("--task", help="task whose records or format PATH holds")
    p.add_argument("--define", action="append", default=[], metavar="YAML", help="task definition file(s) to load")
    p.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="task argument, e.g. answer_key=pre-2023-12-14 or subjects=Science")
    p.add_argument("--data", help="dataset location, for golds when PATH carries none and no --answer-key is given")
    p.add_argument("--answer-key", type=Path, help="official answer_dict_val.json-style key file")
    p.add_argument("--drop-missing", action="store_true",
                   help="leave ids without a prediction out of the denominator (the official script's behaviour)")
    p.add_argument("--fallback-seed", type=int, default=42, help="seed of the parser's random fallback (42)")
    p.add_argument("--output", type=Path, help="write the summaries as JSON here")
    p.add_argument("--records-out", type=Path, help="write the re-scored per-sample JSONL here")


def _repair_parser(sub) -> None:
    p = sub.add_parser(
        "repair", help="move bad lines of a run's files or a leaderboard aside",
        description="Make files readable again without losing a byte: bad lines (not UTF-8, not JSON; for the "
        "leaderboard a wrong field count or a non-number) are moved to <file>.bad and a torn last line to "
        "<file>.torn (both appended to); every good line is kept. PATH: a run directory (its responses*.jsonl and "
        "samples_*.jsonl; refused while a run holds it) or one JSONL file.",
    )  # fmt: skip
    p.add_argument("path", nargs="?", type=Path, help="run directory or JSONL file")
    p.add_argument("--leaderboard", type=Path, metavar="PATH", help="repair this leaderboard CSV instead")


def _view_parser(sub) -> None:
    p = sub.add_parser(
        "view", help="write a static viewer of a run's samples (or of two runs side by side)",
        description="Write a self-contained viewer (index.html, data and media in one folder; open it from disk, "
        "no server, no network): per task a filterable list of the samples with their question, options, images, "
        "audio, dialog transcript, raw response, parsed answer and rule, flags, gold, score and the prompt as sent. "
        "With two runs: the items side by side, the flips first. Questions and media come from the tasks rebuilt "
        "with each run's recorded arguments (as `rescore` does), checked against the recorded hashes.",
    )  # fmt: skip
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="a run directory, or two (A then B) to pair")
    p.add_argument("--out", type=Path, help="output folder (default: RUN/view; for two runs RUN_A/compare-<B>/view, "
                   "where `s3eval compare A B` links its flipped items to)")
    p.add_argument("--task", action="append", default=[], metavar="TASK",
                   help="only this task (repeatable, or comma-separated)")
    p.add_argument("--samples", nargs="+", metavar="ID",
                   help="only these items: sample ids or dialog ids, comma- or space-separated, or @FILE")
    p.add_argument("--data", help="dataset location, where the run's data moved (default: as the run recorded)")
    p.add_argument("--cache-dir", help="the user cache of built-in sets, as given to `run` (default: the usual place)")


def _cache_parser(sub) -> None:
    p = sub.add_parser(
        "cache", help="list or remove the built-in assets in the user cache",
        description="Built-in assets (the tiny S³ releases, the trained sanity release, the built-in sets) are made "
        "on first use into the user cache: --cache-dir, else $XDG_CACHE_HOME/s3eval, else ~/.cache/s3eval. Each "
        "entry is keyed by the source of the code that made it; changed code makes a new entry and leaves the old "
        "one for `clear`.",
    )  # fmt: skip
    p.add_argument("action", choices=["info", "clear"],
                   help="info: list the entries with sizes and what made them; clear: remove them")
    p.add_argument("--cache-dir", default=argparse.SUPPRESS, help="the cache folder (default: as above)")
    p.add_argument("--stale", action="store_true", help="clear: only the entries today's code would not use")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3eval",
        description="Evaluation harness for the S³ multimodal model: MMMU with official-exact scoring.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"s3eval {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    _sweep_parser(sub)
    _rescore_parser(sub)
    _cache_parser(sub)
    _repair_parser(sub)
    _view_parser(sub)
    lb = sub.add_parser("leaderboard", help="show the leaderboard CSV", description="Show the leaderboard CSV: per task, best first, with 95 % Wilson intervals.")
    lb.add_argument("--path", type=Path, default=Path("results/leaderboard.csv"),
                    help="leaderboard CSV (default results/leaderboard.csv)")
    lb.add_argument("--wide", action="store_true", help="every column, not the compact view")
    lb.add_argument("--task", help="only this task")
    lb.add_argument("--model", help="only this model")
    lb.add_argument("--markdown", action="store_true", help="print a markdown table")
    cmp = sub.add_parser(
        "compare", help="unit-paired comparison of runs",
        description="Compare runs unit by unit (items, circular questions, dialogs) on the units they share: each "
        "run's score as the task's headline defines it, delta vs the first run, paired bootstrap 95 % CI over units, "
        "p-value (exact McNemar for right/wrong units, paired sign-flip for graded), flipped items. Runs that "
        "differ only in their media mode (run --media) are compared without --allow-mismatch and also get the "
        "media gain (with media − without, and the share of answers unchanged). Writes compare.csv, flipped.csv, "
        "media_gain.csv (where there is one), compare.png and a self-contained compare.html to --out.",
    )  # fmt: skip
    cmp.add_argument("runs", nargs="+", type=Path, help="run directories; the first is the reference")
    cmp.add_argument("--out", type=Path,
                     help="output folder (default: compare-<other run ids> inside the first run's directory)")
    cmp.add_argument("--group", help="group kind to chart and list, e.g. subject (default: per task, the grouping "
                     "of its leaderboard row: discipline for MMMU, category for QA sets, dialog type for dialogs)")
    cmp.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    cmp.add_argument("--allow-mismatch", action="store_true",
                     help="compare even if prompts, media, parser or answer-key versions differ")
    gate = sub.add_parser(
        "gate", help="fail when a run is worse than a baseline (or its media gain too small)",
        description="Exit 1 when a task fails, 0 when all pass (a SKIP passes), printing one line per task. Give "
        "exactly one baseline. --baseline-run RUN (paired): each task is paired with the baseline run's unit by "
        "unit (items, circular questions, dialogs) and passes when a non-inferiority test gives evidence that the "
        "run is at most --margin worse (H1: Δ > −margin, PASS when p < --alpha; exact McNemar for right/wrong "
        "units, a paired bootstrap over units otherwise); each line gives Δ with its 95 % interval and the units "
        "the test needs for 80 % power. --baseline CSV: the aggregate test against a leaderboard row (one-sided "
        "exact binomial at --alpha, or --tolerance). --ablated-run with --min-media-gain also fails a task whose "
        "media gain (run − the same checkpoint without media) is below the minimum.",
    )  # fmt: skip
    gate.add_argument("run", type=Path, help="run directory")
    gate.add_argument("--baseline", type=Path, metavar="CSV",
                      help="leaderboard-format CSV; its last row per task is the baseline (aggregate test)")
    gate.add_argument("--baseline-run", type=Path, metavar="RUN",
                      help="baseline run directory: paired non-inferiority test per task, unit by unit")
    gate.add_argument("--margin", type=float,
                      help="--baseline-run: how much worse the run may be, as a score difference (default 0.01 = "
                      "one point)")
    gate.add_argument("--mode", choices=["test", "tolerance"],
                      help="--baseline CSV: test = one-sided exact binomial test over the headline's units "
                      "(right/wrong scores); tolerance = fail below baseline − --tolerance (graded) (default test)")
    gate.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    gate.add_argument("--tolerance", type=float,
                      help="--baseline CSV --mode tolerance: allowed absolute drop (default 0.02)")
    gate.add_argument("--ablated-run", type=Path, metavar="RUN",
                      help="the same checkpoint's run with --media withhold/noise/shuffle, for --min-media-gain")
    gate.add_argument("--min-media-gain", type=float, metavar="X",
                      help="fail a task whose media gain (headline with media − without, on paired units) is below X")
    gate.add_argument("--task", action="append", default=[], metavar="TASK",
                      help="gate only these tasks (repeatable, or comma-separated)")
    gate.add_argument("--require-all", action="store_true",
                      help="fail a task the baseline (or ablated run) lacks (default: report it SKIP)")
    gate.add_argument("--json", type=Path, metavar="PATH", help="also write every number as JSON here")
    gate.add_argument("--junit", type=Path, metavar="PATH",
                      help="also write JUnit XML here (testsuite s3eval.gate, one testcase per task), for CI")
    tasks = sub.add_parser("tasks", help="list registered tasks", description="List registered tasks with sizes, metrics and data sources.")
    tasks.add_argument("--verbose", "-v", action="store_true", help="also list each task's --task-arg arguments")
    tasks.add_argument("--define", action="append", default=[], metavar="YAML", help="task definition file(s) to load")
    return parser
