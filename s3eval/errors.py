"""The one base class for errors a user can cause (bad input, a missing file, a busy run directory, …): the CLI
prints such an error as one line and exits 2; anything else is a bug and shows as an internal error."""


class S3evalError(Exception):
    """What a user can cause: one line naming the file, item or field and what to do."""
