"""Files of a comparison: CSV tables (``compare.csv``, ``flipped.csv``, and ``media_gain.csv`` where runs differ
only in their media mode), a PNG chart of per-group scores with 95 % Wilson intervals, and a self-contained HTML
report embedding the chart."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Mapping, Optional, Sequence
from urllib.parse import quote, urlencode

import pandas as pd

from .compare import MEDIA_GAIN_COLUMNS, display_frame, percent_frame
from .safe_output import spreadsheet_frame
from .stats import wilson_interval
from .storage import atomic_write_text


def chart_png(rows: Sequence[dict], kinds: Mapping[str, Optional[str]]) -> bytes:
    """Per task a panel of grouped bars: each run's score per group of the task's kind (overall where it has
    none), with Wilson 95 % intervals for right/wrong units."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows)) or ["(nothing shared)"]
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 3.6 * len(tasks)), dpi=110, squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        kind = kinds.get(task) or "overall"
        chosen = [r for r in rows if r["task"] == task and r["group_kind"] == kind]
        _panel(ax, task, kind, chosen)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _panel(ax, task: str, kind: str, chosen: Sequence[dict]) -> None:
    groups = list(dict.fromkeys(r["group"] for r in chosen))
    runs = [chosen[0]["run_a"]] + list(dict.fromkeys(r["run_b"] for r in chosen)) if chosen else []
    width = 0.8 / max(1, len(runs))
    for i, run in enumerate(runs):
        heights, errors = [], [[], []]
        for group in groups:
            row = next(r for r in chosen if r["group"] == group and (i == 0 or r["run_b"] == run))
            acc = row["score_a"] if i == 0 else row["score_b"]
            n = row["n_units"]
            low, high = wilson_interval(round(acc * n), n) if row["test"] == "mcnemar" else (acc, acc)
            heights.append(acc)
            errors[0].append(max(0.0, acc - low))  # rounding can put a bound a hair past the estimate
            errors[1].append(max(0.0, high - acc))
        ax.bar([g + (i - (len(runs) - 1) / 2) * width for g in range(len(groups))], heights, width, yerr=errors,
               capsize=3, label=run)  # fmt: skip
    ax.set_xticks(range(len(groups)), groups, rotation=15, ha="right")
    ax.set_ylabel("score (per unit, as the headline)")
    ax.set_ylim(0, 1)
    ax.set_title(f"{task}: per {kind}" if kind != "overall" else f"{task}: overall")
    if runs:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no shared items", ha="center", va="center", transform=ax.transAxes)


def write_report(rows: Sequence[dict], flips: Sequence[dict], out: Path, kinds: Mapping[str, Optional[str]],
                 runs: Sequence[str] = (), media_gains: Sequence[dict] = ()) -> list[Path]:  # fmt: skip
    """``runs``: a line naming each run (id, model, checkpoint), the first being the reference; ``media_gains``:
    ``compare.media_gain_rows``, written to media_gain.csv and the report where there are any."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table, flipped = pd.DataFrame(rows), pd.DataFrame(flips)
    # Spreadsheet-safe cells: an item id or response starting with = + - @ is written with a leading ' (safe_output).
    atomic_write_text(out / "compare.csv", spreadsheet_frame(table).to_csv(index=False))
    atomic_write_text(out / "flipped.csv", spreadsheet_frame(flipped).to_csv(index=False))
    written = [out / "compare.csv", out / "flipped.csv"]
    if media_gains:
        gains = spreadsheet_frame(pd.DataFrame(list(media_gains)))
        atomic_write_text(out / "media_gain.csv", gains.to_csv(index=False))
        written.append(out / "media_gain.csv")
    png = chart_png(rows, kinds)
    mismatched = sorted({f"{r['run_b']}: {r['mismatch']}" for r in rows if r.get("mismatch")})
    (out / "compare.png").write_bytes(png)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>s3eval comparison</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:3px 8px;text-align:right}}.sig{{background:#fde2e2}}</style></head><body>
<h1>s3eval comparison</h1>
<p>Runs compared unit by unit (an item, a circular question's rotations, a dialog's turns) on the units both
scored. score: the task's headline on the paired units (overall rows; a group row: the mean of its units' scores);
accuracy: the mean per-item score (CSV). delta = score B − score A; CI = paired bootstrap 95 % over units
(within dialog types for weighted headlines); p: exact McNemar for right/wrong units, a paired sign-flip test over
units for graded ones. Highlighted rows: p &lt; the chosen alpha.</p>
<h2>Runs</h2><ol>{"".join(f"<li>{html.escape(line)}</li>" for line in runs)}</ol>
{"<p><b>Compared with --allow-mismatch although they differ:</b></p><ul>" + "".join(
    f"<li>{html.escape(m)}</li>" for m in mismatched) + "</ul>" if mismatched else ""}
<img alt="score per group" src="data:image/png;base64,{base64.b64encode(png).decode()}">
{_html_table(rows, kinds)}
{_media_gain_html(media_gains)}
<h2>Flipped items ({len(flipped)})</h2>
{_flipped_html(flipped, out)}
</body></html>
"""
    atomic_write_text(out / "compare.html", page)
    return written + [out / "compare.png", out / "compare.html"]


def _media_gain_html(gains: Sequence[dict]) -> str:
    if not gains:
        return ""
    shown = percent_frame(pd.DataFrame(list(gains))[MEDIA_GAIN_COLUMNS])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in MEDIA_GAIN_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in shown.itertuples(index=False))  # fmt: skip
    return ("<h2>Media gain</h2><p>The run with its media minus the same model's run without them (media: the "
            "ablation), on the paired units: score, gain with its paired 95 % interval and p as above, and the share "
            "of items answered the same without the media (the parsed answer, else the stripped response).</p>"
            f'<table class="gain"><tr>{head}</tr>{body}</table>')


def _flipped_html(flipped: pd.DataFrame, out: Path) -> str:
    """The flipped items; with one other run, each links to its card in the paired viewer, which
    ``s3eval view A B`` writes to ``view/`` beside this report by default."""
    if flipped.empty:
        return "<p>none</p>"
    linked = flipped["run_b"].nunique() == 1
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in flipped.columns) + ("<th>card</th>" if linked else "")
    body = []
    for row in flipped.itertuples(index=False):
        cells = "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
        if linked:
            target = "view/index.html#" + urlencode({"task": row.task, "id": row.sample_id}, quote_via=quote)
            cells += f'<td><a href="{html.escape(target, quote=True)}">view</a></td>'
        body.append(f"<tr>{cells}</tr>")
    note = (f"<p>Each item links to its card in the paired viewer, <code>{html.escape(str(out / 'view'))}</code>; "
            f"if the link is broken, write the viewer with <code>s3eval view RUN_A RUN_B --out "
            f"{html.escape(str(out / 'view'))}</code> (its default folder).</p>") if linked else ""  # fmt: skip
    return f'{note}<table class="flips"><tr>{head}</tr>{"".join(body)}</table>'


def _html_table(rows: Sequence[dict], kinds: Mapping[str, Optional[str]]) -> str:
    columns = ["task", "group", "run_a", "run_b", "unit", "n_units", "score_a", "score_b", "delta", "ci_low",
               "ci_high", "test", "p_value", "significant"]  # fmt: skip
    shown = display_frame(rows, kinds, columns)
    if shown.empty:
        return "<p>nothing shared</p>"
    head = "".join(f"<th>{c}</th>" for c in columns[:-1])
    body = [
        f"<tr class=\"{'sig' if row[-1] else ''}\">" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row[:-1]) + "</tr>"
        for row in shown.itertuples(index=False)
    ]
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
