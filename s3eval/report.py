"""Terminal summaries of scored tasks."""

from __future__ import annotations

from typing import Optional

from .results import TaskResult
from .scoring import RIGHT_WRONG


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_summary(result: TaskResult) -> str:
    """The task's accuracy line, its headline (when it is a number of its own) and its leaderboard groups."""
    o, headline = result.summary["overall"], result.headline
    right_wrong = result.kind == RIGHT_WRONG
    lines = [
        f"{result.task}: {'accuracy' if right_wrong else 'mean score'} {_pct(o['accuracy'])} "
        f"({o['correct'] if right_wrong else round(o['score_sum'], 2)}/{o['n']})  "
        f"strict {_pct(o['strict_accuracy'])}  expected {_pct(o['expected_accuracy'])}  "
        f"fallbacks {o['n_fallback']}  errors {o['n_error']}  missing {o['n_missing']}"
    ]
    if headline.unit != "item" or headline.details:  # a number of its own, not the accuracy again
        interval = headline.interval
        ci = f"  95 % CI {_pct(interval.low)}–{_pct(interval.high)} ({interval.method})" if interval else ""
        details = "  ".join(f"{k} {_fmt(v)}" for k, v in headline.details.items())
        lines.append(f"  {headline.metric}: {_pct(headline.score)} over {headline.n_units} {headline.unit}s{ci}"
                     + (f"  ({details})" if details else ""))  # fmt: skip
    groups = result.summary["groups"].get(result.leaderboard_group, {}) if result.leaderboard_group else {}
    if groups:
        width = max(len(name) for name in groups)
        for name, g in groups.items():
            count = g["correct"] if right_wrong else round(g["score_sum"], 2)
            lines.append(f"  {name:<{width}}  {_pct(g['accuracy']):>5} ({count}/{g['n']})")
    return "\n".join(lines)
