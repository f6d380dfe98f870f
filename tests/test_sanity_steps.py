"""The sanity training's checkpoint series (``builtin:sanity-steps``): four complete releases of the one run that
makes ``builtin:sanity``, from untrained to final, indexed in steps.json, sharing their unchanged files with the
release by hard links. From the suite's cache (the ``sanity_steps`` fixture in conftest.py)."""

import json
import os
import tempfile

import pytest

from s3eval.cache import cache_root
from s3eval.models.s3.spec import S3Spec, resolve_builtin_sweep
from s3eval.models.s3.validate import validate_release
from tasks.sanity.steps import RISE_MARKS, Snapshot, SnapshotGrid, choose, progress

CHANCE = {"image": 0.25, "audio": 0.5}


def links_possible(folder):
    """Whether the file system of ``folder`` has hard links (probed beside it, in the suite's own cache)."""
    handle, source = tempfile.mkstemp(dir=folder)
    os.close(handle)
    try:
        os.link(source, source + ".link")
        os.unlink(source + ".link")
        return True
    except OSError:
        return False
    finally:
        os.unlink(source)


def files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_series_is_four_valid_checkpoints_in_step_order(sanity_steps, sanity_release):
    checkpoints, base = sanity_steps
    release, release_base = sanity_release
    assert base == release_base and [c.parent for c in checkpoints] == [release.parent / "steps"] * 4
    record = json.loads((release.parent / ".complete").read_text())
    steps = [int(c.name.removeprefix("checkpoint-")) for c in checkpoints]
    assert [c.name for c in checkpoints] == [f"checkpoint-{s}" for s in steps]
    assert steps[0] == 0 and steps[-1] == record["steps"] and steps == sorted(set(steps))
    for checkpoint in checkpoints:
        assert files(checkpoint) == files(release)
        validate_release(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base)}))
    assert resolve_builtin_sweep("builtin:sanity-steps") == (checkpoints, base)


def test_index_records_each_checkpoint_and_the_rise(sanity_steps):
    checkpoints, _ = sanity_steps
    index = json.loads((checkpoints[0].parent / "steps.json").read_text())
    rows = index["checkpoints"]
    assert [r["checkpoint"] for r in rows] == [c.name for c in checkpoints]
    assert [f"checkpoint-{r['step']}" for r in rows] == [c.name for c in checkpoints]
    by_step = {r["step"]: r["held_out_first_token_accuracy"] for r in index["snapshots"]}
    assert [by_step[r["step"]] for r in rows] == [r["held_out_first_token_accuracy"] for r in rows]
    rise = [progress(r["held_out_first_token_accuracy"], CHANCE) for r in rows]
    assert rise[0] <= 0 < RISE_MARKS[0] <= rise[1] < rise[2] < 1 <= rise[3] + 0.02, rise


def test_final_checkpoint_is_the_release_and_unchanged_files_are_shared(sanity_steps, sanity_release):
    checkpoints, _ = sanity_steps
    release, _ = sanity_release
    linked = links_possible(cache_root())
    for checkpoint in checkpoints:
        trained = ("language_model", "projections") if checkpoint == checkpoints[-1] else ()
        for name in files(release):
            if name.parts[0] in ("tokenizer", "imagebind", *trained):
                assert (checkpoint / name).read_bytes() == (release / name).read_bytes(), name
                if linked:
                    assert os.path.samefile(checkpoint / name, release / name), name
    for name in ("language_model/adapter_model.safetensors", "projections/modality_adapters.pt"):
        assert (checkpoints[0] / name).read_bytes() != (release / name).read_bytes()


def test_grid_thins_to_its_limit_and_spans_the_run():
    grid = SnapshotGrid(limit=4)
    for step in range(0, 51):
        if grid.wants(step):
            grid.add(Snapshot(step, {}, {}))
    assert (grid.every, [s.step for s in grid.kept]) == (16, [0, 16, 32, 48])


@pytest.mark.parametrize("audio, chosen", [
    ((0.5, 0.5, 0.5, 0.5, 0.5, 0.5), [0, 8, 10, 12]),  # the rise only at the end: the last two before it
    ((0.5, 0.9, 1.0, 1.0, 1.0, 1.0), [0, 4, 6, 12]),  # a quick rise: the first snapshots past each mark
    ((0.5, 0.5, 0.7, 0.7, 1.0, 1.0), [0, 6, 10, 12]),
])  # fmt: skip
def test_choice_follows_the_rise(audio, chosen):
    kept = [Snapshot(2 * i, {}, {}, {"audio": a}) for i, a in enumerate((0.0, *audio))]
    final = Snapshot(12, {}, {}, {"audio": 1.0})
    assert [s.step for s in choose(kept, final, {"audio": 0.5})] == chosen
