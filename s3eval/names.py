"""Names that become file names (task names, run names) are names, never paths: a task called ``../../x`` must not
write outside its run directory, and a ``/`` must not nest a samples file where ``rescore`` and ``compare`` no
longer look."""

from __future__ import annotations

import re

from .errors import S3evalError

# Letters, digits and a few separators; a leading dot or dash would hide the file or read as a flag.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@=-]*")
MAX_LENGTH = 128


class InvalidNameError(S3evalError, ValueError):
    pass


def check_name(value: object, what: str) -> str:
    """``value`` if it is a safe file-name component, else a one-line error naming ``what`` and the rule."""
    if not isinstance(value, str) or not value:
        raise InvalidNameError(f"{what} must be a non-empty name, got {value!r}")
    if len(value) > MAX_LENGTH or not _NAME.fullmatch(value) or ".." in value:
        raise InvalidNameError(f"{what} {value!r} is not a valid name: use letters, digits and _ . + @ = - (not first), "
                         f"no '/', no '..', at most {MAX_LENGTH} characters")  # fmt: skip
    return value
