"""A sweep's summary: per checkpoint and task the headline with its 95 % interval, the paired difference (by unit)
against the previous checkpoint and against the best, the best checkpoint per task and the first significant
regression; written as ``sweep.csv``, ``sweep.png`` and ``summary.json`` and printed as a table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

from .rescore import load_own_records, own_record_files
from .safe_output import spreadsheet_frame
from .storage import atomic_write_bytes, atomic_write_json, atomic_write_text
from .sweep import DONE, SKIPPED, Entry
from .types import Record


@dataclass(frozen=True)
class Diff:
    """Candidate minus reference on the units both scored: Δ, its 95 % interval, and the one-sided p of a drop."""

    delta: float
    low: float
    high: float
    p_drop: float
    n_units: int
    test: str


@dataclass
class Row:
    checkpoint: str
    step: int
    task: str
    status: str
    metric: str = ""
    score: Optional[float] = None
    ci_low: Optional[float] = None
    ci_high: Optional[float] = None
    unit: str = ""
    n_units: Optional[int] = None
    vs_previous: Optional[Diff] = None
    vs_best: Optional[Diff] = None
    best: bool = False
    regression: bool = False  # a significant drop from the previous checkpoint
    run_dir: str = ""
    reason: str = ""

    def flat(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("vs_previous", "vs_best")}
        for name, diff in (("prev", self.vs_previous), ("best", self.vs_best)):
            out[f"delta_{name}"] = diff.delta if diff else None
            out[f"delta_{name}_low"] = diff.low if diff else None
            out[f"delta_{name}_high"] = diff.high if diff else None
            out[f"p_drop_{name}"] = diff.p_drop if diff else None
        return out


def summarize(entries: Sequence[Entry], alpha: float = 0.05) -> list[Row]:
    """One row per (checkpoint, task), in step order; a skipped checkpoint gets one row per task of the sweep."""
    tasks = list(dict.fromkeys(t for e in entries for t in e.results))
    rows: list[Row] = []
    records: dict[tuple[int, str], list[Record]] = {}
    for entry in entries:
        label, step = str(entry.checkpoint.path), entry.checkpoint.step
        if entry.status != DONE:
            rows += [Row(label, step, t, SKIPPED, reason=entry.reason) for t in tasks or ["*"]]
            continue
        loaded = load_own_records(own_record_files(entry.run_dir)) if entry.run_dir else {}
        for task, result in entry.results.items():
            h = result.headline
            records[(step, task)] = loaded.get(task, [])
            rows.append(Row(label, step, task, DONE, h.metric, h.score, h.interval.low if h.interval else None,
                            h.interval.high if h.interval else None, h.unit, h.n_units, run_dir=str(entry.run_dir)))
    by_step = {e.checkpoint.step: e for e in entries}
    for task in tasks:
        done = [r for r in rows if r.task == task and r.status == DONE and r.score is not None]
        if not done:
            continue
        best = max(done, key=lambda r: (r.score, -r.step))  # ties: the earliest step
        best.best = True
        headline = by_step[best.step].results[task].headline
        previous: Optional[Row] = None
        for row in done:
            if previous is not None:
                row.vs_previous = _paired(records[(previous.step, task)], records[(row.step, task)], headline)
                row.regression = (row.vs_previous is not None and row.vs_previous.p_drop < alpha
                                  and row.vs_previous.delta < 0)  # fmt: skip
            if row is not best:
                row.vs_best = _paired(records[(best.step, task)], records[(row.step, task)], headline)
            previous = row
    return rows


def _paired(reference: Sequence[Record], candidate: Sequence[Record], headline) -> Optional[Diff]:
    """None where the two runs share no scored unit (e.g. different --samples)."""
    from .paired import compare_records

    result = compare_records(reference, candidate, headline)
    if result.delta is None:
        return None
    return Diff(result.delta, result.ci_low, result.ci_high, result.p_drop, result.n_units, result.test_name)


def first_regressions(rows: Sequence[Row]) -> dict[str, Row]:
    """Per task the first checkpoint (in step order) significantly worse than the one before it."""
    out: dict[str, Row] = {}
    for row in rows:
        if row.regression and row.task not in out:
            out[row.task] = row
    return out


def best_rows(rows: Sequence[Row]) -> dict[str, Row]:
    return {r.task: r for r in rows if r.best}


def write(folder: Path, rows: Sequence[Row], alpha: float) -> list[Path]:
    import pandas as pd

    folder = Path(folder)
    frame = pd.DataFrame([r.flat() for r in rows])
    atomic_write_text(folder / "sweep.csv", spreadsheet_frame(frame).to_csv(index=False))
    atomic_write_bytes(folder / "sweep.png", chart_png(rows))
    atomic_write_json(folder / "summary.json", {
        "alpha": alpha,
        "best": {t: {"checkpoint": r.checkpoint, "step": r.step, "score": r.score} for t, r in best_rows(rows).items()},
        "first_regression": {t: {"checkpoint": r.checkpoint, "step": r.step, **asdict(r.vs_previous)}
                             for t, r in first_regressions(rows).items()},
        "rows": [r.flat() for r in rows],
    })  # fmt: skip
    return [folder / "sweep.csv", folder / "sweep.png", folder / "summary.json"]


def chart_png(rows: Sequence[Row]) -> bytes:
    """Per task a panel: the headline against the step with its 95 % band; the best checkpoint starred, a
    significant regression ringed red, skipped checkpoints marked on the axis."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.task for r in rows if r.status == DONE)) or ["(no checkpoint evaluated)"]
    fig, axes = plt.subplots(len(tasks), 1, figsize=(7.5, 3.2 * len(tasks)), dpi=110, squeeze=False)
    skipped = sorted({r.step for r in rows if r.status != DONE})
    for ax, task in zip(axes[:, 0], tasks):
        done = [r for r in rows if r.task == task and r.status == DONE and r.score is not None]
        steps = [r.step for r in done]
        ax.plot(steps, [r.score for r in done], marker="o", color="#1f5fa8", label="score")
        banded = [r for r in done if r.ci_low is not None]
        if banded:
            ax.fill_between([r.step for r in banded], [r.ci_low for r in banded], [r.ci_high for r in banded],
                            color="#1f5fa8", alpha=0.18, label="95 % interval")  # fmt: skip
        for r in done:
            if r.best:
                ax.plot([r.step], [r.score], marker="*", markersize=16, color="#d4a017", label="best")
            if r.regression:
                ax.plot([r.step], [r.score], marker="o", markersize=13, fillstyle="none", color="#c0392b",
                        label="significant drop")  # fmt: skip
        if skipped:
            ax.plot(skipped, [0.0] * len(skipped), "x", color="grey", label="skipped (invalid)")
        metric = done[0].metric if done else ""
        ax.set_title(f"{task} — {metric}")
        ax.set_xlabel("step")
        ax.set_ylabel(metric or "score")
        ax.set_ylim(-0.03, 1.03)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def format_table(rows: Sequence[Row]) -> str:
    """The terminal view: per task and checkpoint the score, its interval and the paired differences."""

    def pct(x: Optional[float], signed: bool = False) -> str:
        return "" if x is None else (f"{x * 100:+.1f}" if signed else f"{x * 100:.1f}")

    lines = [f"{'task':<16} {'step':>7} {'score':>6} {'95% interval':>13} {'Δ prev':>7} {'p drop':>7} "
             f"{'Δ best':>7}  note"]  # fmt: skip
    tasks = list(dict.fromkeys(r.task for r in rows))
    for r in sorted(rows, key=lambda r: (tasks.index(r.task), r.step)):  # each task's checkpoints together
        if r.status != DONE:
            lines.append(f"{r.task:<16} {r.step:>7} {'—':>6} {'':>13} {'':>7} {'':>7} {'':>7}  skipped: {r.reason}")
            continue
        interval = f"{pct(r.ci_low)}–{pct(r.ci_high)}" if r.ci_low is not None else ""
        prev, best = r.vs_previous, r.vs_best
        note = "best" if r.best else ""
        if r.regression:
            note = (note + ", " if note else "") + "significant drop"
        lines.append(f"{r.task:<16} {r.step:>7} {pct(r.score):>6} {interval:>13} "
                     f"{pct(prev.delta, True) if prev else '':>7} {f'{prev.p_drop:.3g}' if prev else '':>7} "
                     f"{pct(best.delta, True) if best else '':>7}  {note}")  # fmt: skip
    return "\n".join(lines)
