"""Shared, versioned metric functions: pure, on strings and numbers; ``s3eval.scoring`` applies them to records."""

from typing import Sequence


def require_references(references: Sequence[str], metric: str) -> None:
    """Refuse what would score silently wrong: a bare string (read as one-character references) or none at
    all (an item without a gold answer is a data error, not a wrong prediction)."""
    if isinstance(references, str):
        raise TypeError(f"{metric}: the references must be a sequence of strings, not a single string")
    if len(references) == 0:
        raise ValueError(f"{metric} needs at least one reference answer")
