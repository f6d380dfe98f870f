"""Output that is safe where it is opened: CSV cells a spreadsheet shows as text instead of running them as
formulas, and text that HTML or a markdown table shows as it is.

The spreadsheet rule (OWASP "CSV injection"): a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return, possibly after leading ``'`` characters, is written with one more ``'`` in front, so Excel,
LibreOffice and Google Sheets show it as text. Numbers (anything ``float()`` reads: ``-0.5``, ``+1``, ``-1e-3``,
``-inf``) and non-text values are written as they are. s3eval's own readers remove that one ``'`` again
(``read_cell``), so every value round-trips exactly: ``=x`` → ``'=x`` → ``=x``, ``'=x`` → ``''=x`` → ``'=x``,
``-0.5`` → ``-0.5``. The leaderboard, ``compare.csv`` and ``flipped.csv`` are written this way."""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a CSV cell no spreadsheet evaluates: ``'`` put in front of text that starts (after any ``'``)
    with ``=``, ``+``, ``-``, ``@``, tab or CR, unless the text is a number; anything else unchanged."""
    if not isinstance(value, str):
        return value
    body = value.lstrip("'")
    if not body.startswith(TRIGGERS):
        return value
    if body is value and _is_number(value):
        return value
    return "'" + value


def read_cell(cell: str) -> str:
    """The inverse of ``spreadsheet_cell`` for a cell read back: one leading ``'`` removed where it precedes
    (after any further ``'``) ``=``, ``+``, ``-``, ``@``, tab or CR."""
    if cell.startswith("'") and cell.lstrip("'").startswith(TRIGGERS):
        return cell[1:]
    return cell


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every cell passed through ``spreadsheet_cell`` (for ``DataFrame.to_csv``)."""
    return frame.map(spreadsheet_cell)


def escape_html(text: Any) -> str:
    """``text`` for HTML text or an attribute value: ``& < > " '`` as entities."""
    return html.escape(str(text), quote=True)


_PUNCTUATION_AFTER_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~])")


def escape_markdown(text: Any) -> str:
    """``text`` as one cell of a markdown (GitHub) table that renders as the text itself: HTML special characters
    as entities, a backslash before punctuation doubled, ``|`` as ``\\|``, line breaks as ``<br>``."""
    text = html.escape(str(text), quote=False)
    text = _PUNCTUATION_AFTER_BACKSLASH.sub(r"\\\\", text)
    text = text.replace("|", "\\|")
    return re.sub(r"\r\n|\r|\n", "<br>", text)
