"""CLI entry point: ``python run_eval.py run …`` is the same as ``s3eval run …``."""

import sys

from s3eval.cli import main

if __name__ == "__main__":
    sys.exit(main())
