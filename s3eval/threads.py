"""How many CPU threads torch uses in this process — decided in one place, ``apply_threads``.

torch's default (one intra-op thread per core) stalls when the machine is shared: its OpenMP threads wait for
each other at the end of every operation, so a neighbour process holding a core makes every operation wait for a
scheduler time slice, while the waiting threads spin and burn CPU. Measured with ``python bench/threads.py`` on a
2-core machine (issue 17) that other users' jobs kept at a load average of 1.4–4, median wall / CPU seconds:

    training the sanity checkpoint            1 thread          2 threads
    old trainer, no added load                45.5 / 45.5       175.9 / 197.7
    old trainer, beside one busy process      75.0 / 45.2       537.9 / 371.2
    new trainer, no added load (3 runs)       15.7 / 15.5        53.1 /  58.3
    new trainer, beside one busy process      32.7 / 16.0       131.2 /  73.6
    evaluating 200 sanity items               11.3 /  8.8        11.4 /  10.0
    the same, beside one busy process         19.6 /  9.0        19.4 /  12.8

The one quiet moment (load 1.5) gave the old trainer 43 s wall / 71 s CPU at 2 threads: no faster than 1 thread
for 56 % more CPU. So on ≤ 2 cores a second thread never paid and, with any neighbour, cost 3–7× the time. Above
2 cores (not measured here: no such machine) the rule leaves one core free — for the process's own Python threads
(media decoding) and one neighbour; re-measure with ``python bench/threads.py --threads 1 2 4 8 …``.

The command line passes an explicit count (``--threads N``, config ``threads:``); ``None`` applies the rule.
Nothing here reads environment variables.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Optional

RULE = "1 thread per process on machines with at most 2 usable cores; otherwise all usable cores but one"
_applied: Optional[int] = None
_explicit = False


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a container's cpuset), not all the machine has."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(cpus: Optional[int] = None) -> int:
    """The rule (see RULE and the module docstring): 1 at ≤ 2 usable cores, else cores − 1."""
    cpus = usable_cpus() if cpus is None else cpus
    return 1 if cpus <= 2 else cpus - 1


def apply_threads(n: Optional[int] = None) -> int:
    """Set torch's intra-op thread count to ``n`` (a positive integer) and return it. ``None`` applies the default
    rule — unless an explicit count was applied earlier in this process, which then stays (a program that embeds
    the CLI, like bench/threads.py, keeps its choice). Without torch installed (scoring-only installs) nothing is
    set."""
    global _applied, _explicit
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads must be a positive integer, got {n!r}")
    if n is None and _explicit and _applied is not None:
        return _applied
    count = default_threads() if n is None else n
    _applied, _explicit = count, n is not None
    # Importing torch here would cost every run half a gigabyte, scripted backends included: the count is set now
    # if torch is already loaded, else by ensure_threads() where torch work starts.
    if "torch" in sys.modules:
        _set_torch(count)
    return count


def _set_torch(count: int) -> None:
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.get_num_threads() != count:
            torch.set_num_threads(count)


def applied() -> Optional[int]:
    """The count ``apply_threads`` last set in this process, or None when it has not been called."""
    return _applied


def ensure_threads() -> int:
    """Apply the chosen count (the CLI, a config, a test) or else the default rule to torch: for the entry points
    that start torch work (loading the S³ backend, training the sanity checkpoint)."""
    count = _applied if _applied is not None else apply_threads(None)
    _set_torch(count)
    return count
