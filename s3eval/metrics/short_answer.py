"""Normalised exact match for short (one-word, yes/no) answers, as used for Clotho-AQA.

Source: Clotho-AQA (Zenodo 6473207) reports plain accuracy on yes/no and one-word answers; the usual open
harness convention (lmms-eval's Clotho-AQA task) compares them ignoring case and punctuation, and older
versions of it map "y" to "yes" (see ``shared/reference/aij_vqa_aqa.md`` section 2, "Normalisation choices").
There is no single official scorer, so the choices here are explicit:

* lower-case, then delete every character whose Unicode category is punctuation (P*): curly quotes and
  non-ASCII dashes count as well; symbols (S*, e.g. ``$``, ``+``) are kept because they can carry meaning;
* deleted, not replaced by a space, so "it's" == "its" and "well-known" == "wellknown";
* whitespace is collapsed, so spacing never decides a match;
* the yes/no synonym map applies to the whole string only: "yeah" -> "yes", but "yeah it is" stays as is,
  so a hedged or longer answer never passes as a bare yes/no.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Sequence

from . import require_references

VERSION = "1.0.0"

SYNONYMS: Final[dict[str, str]] = {
    "y": "yes", "yeah": "yes", "yep": "yes", "yup": "yes", "true": "yes", "correct": "yes",
    "n": "no", "nope": "no", "nah": "no", "false": "no", "incorrect": "no",
}


def normalize_short(text: str) -> str:
    """Lower-case, drop Unicode punctuation, collapse whitespace, map whole-string yes/no synonyms."""
    stripped = "".join(ch for ch in text.lower() if not unicodedata.category(ch).startswith("P"))
    collapsed = " ".join(stripped.split())
    return SYNONYMS.get(collapsed, collapsed)


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised answer, else 0.0."""
    require_references(answers, "exact_match")
    pred = normalize_short(prediction)
    return 1.0 if any(pred == normalize_short(a) for a in answers) else 0.0
