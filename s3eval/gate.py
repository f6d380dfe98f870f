"""The accuracy gate for CI: compare each task's headline score in a run with a committed baseline (a
leaderboard-format CSV) and fail when it dropped by more than sampling noise explains.

Modes:
- ``test`` (default): one-sided exact binomial test over the headline's units — with the baseline score p0 as
  the true rate, how likely is the run's k of n units or fewer? Fail when that probability is below ``alpha``.
  Only for right/wrong headlines that are a mean over independent units (``Headline.kind``/``aggregation``).
- ``tolerance``: fail when score < baseline − ``tolerance`` (absolute); for graded headlines (VQA soft accuracy,
  METEOR, the dialog integral).

A task without a baseline row is reported SKIP and fails only with ``require_all``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from . import leaderboard
from .errors import S3evalError
from .results import MEAN, TaskResult
from .scoring import RIGHT_WRONG
from .stats import binomial_lower_tail
from .storage import read_json


class GateError(S3evalError, ValueError):
    pass


PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class GateResult:
    task: str
    status: str  # PASS, FAIL or SKIP
    reason: str

    @property
    def passed(self) -> bool:
        return self.status != FAIL


def check(run_dir: Path, baseline: Path, mode: str = "test", alpha: float = 0.05, tolerance: float = 0.02,
          tasks: Sequence[str] = (), require_all: bool = False) -> list[GateResult]:  # fmt: skip
    run = read_json(Path(run_dir) / "results.json")
    board = leaderboard.read(baseline)
    unknown = [t for t in tasks if t not in run["tasks"]]
    if unknown:
        raise GateError(f"{run_dir} has no task {unknown[0]!r} (it has {', '.join(run['tasks'])})")
    out = []
    for name, data in run["tasks"].items():
        result = TaskResult.from_dict(name, data, f"{run_dir}/results.json")
        if (tasks and name not in tasks) or not result.has_gold:
            continue
        rows = board[board["task"] == name]
        if rows.empty:
            status = FAIL if require_all else SKIP
            out.append(GateResult(name, status, f"no baseline row for task {name!r} in {baseline}"
                                  + (" (--require-all)" if require_all else "")))  # fmt: skip
            continue
        out.append(_gate(result, rows.iloc[-1], mode, alpha, tolerance))
    if not out:
        out.append(GateResult(",".join(tasks) or "*", FAIL, f"{run_dir} has no scored task to gate"))
    return out


def _gate(result: TaskResult, base, mode: str, alpha: float, tolerance: float) -> GateResult:
    headline = result.headline
    # Rows written before the headline existed carry only the accuracy, which was their headline.
    p0 = float(base["score"]) if not pd.isna(base["score"]) else float(base["accuracy"])
    score, n = headline.score, headline.n_units
    if score is None:
        return GateResult(result.task, FAIL, "the run has no score for this task (no scored items)")
    if mode == "tolerance":
        passed = score >= p0 - tolerance
        why = f"{headline.metric} {score:.4f} vs baseline {p0:.4f} − tolerance {tolerance} = {p0 - tolerance:.4f}"
        return GateResult(result.task, PASS if passed else FAIL, why)
    if headline.kind != RIGHT_WRONG or headline.aggregation != MEAN:
        return GateResult(result.task, FAIL, f"the exact binomial test needs a right/wrong score over independent "
                          f"units; {headline.metric} is {headline.kind} ({headline.aggregation}): use --mode tolerance")
    k = round(score * n)
    p = binomial_lower_tail(k, n, p0)
    passed = p >= alpha
    why = (f"{headline.metric} {k}/{n} {headline.unit}s = {score:.4f} vs baseline {p0:.4f}: P(≤ {k} | baseline "
           f"rate) = {p:.3g} {'≥' if passed else '<'} alpha {alpha}")  # fmt: skip
    return GateResult(result.task, PASS if passed else FAIL, why)
