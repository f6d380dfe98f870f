"""``s3eval view``: a static, self-contained viewer of a run's samples (or of two runs side by side), opened from
disk with no server and no network. See ``build.py`` for the folder it writes and ``assets/`` for the page."""

from .build import ViewError, build_view

__all__ = ["ViewError", "build_view"]
