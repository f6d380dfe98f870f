"""The sanity training's checkpoint series, for ``s3eval sweep builtin:sanity-steps``: four checkpoints of the one
training run that makes ``builtin:sanity`` — untrained, two on the way up, final — each a complete S³ release
folder in the released layout, beside the release in its cache entry:

    <entry>/steps/steps.json                 each checkpoint's step and held-out first-token accuracy
    <entry>/steps/checkpoint-STEP/           tokenizer/, language_model/, projections/, imagebind/

How the checkpoints are picked: the training stops as soon as held-out accuracy reaches its target, so its length
is only known at the end. During training ``SnapshotGrid`` keeps copies of the trained tensors (LoRA, the full
embed_tokens/lm_head copies, the projector) every few steps, at most SNAPSHOT_LIMIT of them: when full it drops
every other one and doubles its interval, so the grid spans the whole run however long it turns out to be. The
sanity training first learns the answer format (one letter for every item: exactly chance) and only later the
media, in a rise over the last few tenths of the run, so fixed fractions of the run (25 %, 50 %) would both show
chance. The middle checkpoints are therefore the first snapshots ``RISE_MARKS`` of the way from chance to perfect
held-out accuracy (``choose``): step 0 at or below chance, two between, the final step at ≈ 100 %.

The tokenizer and ImageBind files, the same in every checkpoint, are hard links to the release's (copies where
the file system has no hard links), and so are the final checkpoint's adapter and projector: it *is* the release.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from s3eval.errors import S3evalError

SERIES = "steps"  # the series' folder in the trained release's folder
INDEX = "steps.json"
SNAPSHOT_LIMIT = 16  # ≈ 16.5 MB of float32 tensors each for the tiny release
RISE_MARKS = (0.25, 0.75)  # fractions of the way from chance to perfect accuracy the middle checkpoints reach
SHARED = ("tokenizer", "imagebind")  # release folders no training step changes
TRAINED = ("language_model", "projections")


class SeriesError(S3evalError, ValueError):
    pass


@dataclass
class Snapshot:
    """The trained tensors after ``step`` steps, as training holds them: the projector before the standardisation
    is folded in."""

    step: int
    lm: dict[str, torch.Tensor]  # the LM's trainable parameters by name
    projector: dict[str, torch.Tensor]  # the projector's state dict
    accuracy: dict[str, float] = field(default_factory=dict)  # held-out first-token accuracy, per modality


class SnapshotGrid:
    """Snapshots every ``every`` steps, at most ``limit`` (see the module docstring)."""

    def __init__(self, limit: int = SNAPSHOT_LIMIT) -> None:
        self.limit, self.every = limit, 1
        self.kept: list[Snapshot] = []

    def wants(self, step: int) -> bool:
        return step % self.every == 0

    def add(self, snapshot: Snapshot) -> None:
        self.kept.append(snapshot)
        if len(self.kept) > self.limit:
            self.every *= 2
            self.kept = [s for s in self.kept if s.step % self.every == 0]


def progress(accuracy: dict[str, float], chance: dict[str, float]) -> float:
    """How far from chance (0) to perfect (1) the accuracy is, averaged over modalities; below chance is negative."""
    return sum((accuracy[k] - chance[k]) / (1 - chance[k]) for k in chance) / len(chance)


def choose(kept: Sequence[Snapshot], final: Snapshot, chance: dict[str, float]) -> list[Snapshot]:
    """Step 0, the first snapshots that reach RISE_MARKS of the way up (two distinct ones, before the final step;
    the last two before it when the rise comes later), and the final step."""
    inner = [s for s in kept if 0 < s.step < final.step]
    if kept[0].step != 0 or len(inner) < 2:
        raise RuntimeError(f"the sanity training kept too few snapshots for a series: {[s.step for s in kept]}")
    rise = [progress(s.accuracy, chance) for s in inner]
    low = next((i for i, r in enumerate(rise) if r >= RISE_MARKS[0]), len(inner) - 2)
    low = min(low, len(inner) - 2)
    high = next((i for i in range(low + 1, len(inner)) if rise[i] >= RISE_MARKS[1]), len(inner) - 1)
    return [kept[0], inner[low], inner[high], final]


def share(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (a copy where the file system has none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _share_folders(release: Path, checkpoint: Path, folders: Sequence[str]) -> None:
    for name in folders:
        for path in sorted((release / name).rglob("*")):
            if path.is_file():
                share(path, checkpoint / path.relative_to(release))


def write_series(folder: Path, release: Path, chosen: Sequence[Snapshot], grid: Sequence[Snapshot],
                 save: Callable[[Snapshot, Path], None]) -> list[Path]:  # fmt: skip
    """The series in ``folder``: a checkpoint per ``chosen`` snapshot (``save(snapshot, checkpoint)`` writes its
    adapter and projector in the released layout, except the last one's: ``release``'s own) and the index, which
    also lists the accuracy of every ``grid`` snapshot the choice was made from."""
    checkpoints = []
    for i, snapshot in enumerate(chosen):
        checkpoint = folder / f"checkpoint-{snapshot.step}"
        _share_folders(release, checkpoint, SHARED)
        if i == len(chosen) - 1:
            _share_folders(release, checkpoint, TRAINED)
        else:
            save(snapshot, checkpoint)
        checkpoints.append(checkpoint)

    def row(s: Snapshot) -> dict:
        return {"step": s.step, "held_out_first_token_accuracy": {k: round(v, 4) for k, v in s.accuracy.items()}}

    index = {
        "checkpoints": [{"checkpoint": c.name, **row(s)} for c, s in zip(checkpoints, chosen)],
        "chosen_by": f"step 0, the first snapshots {' and '.join(f'{m:g}' for m in RISE_MARKS)} of the way from "
        "chance to perfect held-out accuracy, the final step",
        "snapshots": [row(s) for s in grid],
    }
    # A row per line: the index is meant to be read.
    lines = [f" {json.dumps(key)}: " + (json.dumps(value) if isinstance(value, str) else
             "[\n" + ",\n".join(f"  {json.dumps(item)}" for item in value) + "\n ]")
             for key, value in index.items()]  # fmt: skip
    (folder / INDEX).write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return checkpoints


def read_series(folder: Path) -> list[Path]:
    """The series' checkpoint folders in step order, from its index."""
    try:
        index = json.loads((folder / INDEX).read_text())
    except FileNotFoundError:
        raise SeriesError(f"{folder / INDEX}: missing — this sanity release was trained before checkpoint series "
                          "were kept; delete its folder to train it again") from None  # fmt: skip
    return [folder / c["checkpoint"] for c in index["checkpoints"]]


def ensure_sanity_steps(directory: Optional[Path] = None) -> tuple[list[Path], Path]:
    """The sanity training's checkpoint series (checkpoint folders in step order, base), made with the trained
    release on first use: in ``directory`` when given, else in the release's entry of the user cache."""
    from .checkpoint import trained_folder

    folder = trained_folder(directory)
    return read_series(folder / SERIES), folder / "base"
