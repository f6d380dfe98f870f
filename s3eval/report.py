"""Terminal summaries of scored tasks."""

from __future__ import annotations

from typing import Optional


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def format_summary(task: str, summary: dict, group_kind: Optional[str] = None) -> str:
    o = summary["overall"]
    lines = [
        f"{task}: accuracy {_pct(o['accuracy'])} ({o['correct']}/{o['n']})  "
        f"strict {_pct(o['strict_accuracy'])}  expected {_pct(o['expected_accuracy'])}  "
        f"fallbacks {o['n_fallback']}  errors {o['n_error']}  missing {o['n_missing']}"
    ]
    groups = summary["groups"].get(group_kind, {}) if group_kind else {}
    if groups:
        width = max(len(name) for name in groups)
        for name, g in groups.items():
            lines.append(f"  {name:<{width}}  {_pct(g['accuracy']):>5} ({g['correct']}/{g['n']})")
    return "\n".join(lines)
