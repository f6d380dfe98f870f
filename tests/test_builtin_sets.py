"""The built-in sets: built from media inside installed packages, facts measured from the files, and each run
end to end through the tiny S³ checkpoint."""

import json

import pytest

from s3eval import leaderboard
from s3eval.config import RunConfig, TaskSpec
from s3eval.runner import run
from s3eval.storage import read_jsonl
from s3eval.task import TaskOptions
from s3eval.task_registry import build_task

from tasks import builtin_media

BUILTINS = {"vqa_builtin_images": 34, "aqa_builtin_sounds": 17, "aij_builtin_dialogs": 16}


def test_media_facts_are_measured_from_the_packaged_files():
    assert builtin_media.image("cat").grey is False and builtin_media.image("camera").grey is True
    assert builtin_media.image("horse").grey is True  # an RGBA silhouette: alpha is ignored
    assert builtin_media.sound("house").seconds == pytest.approx(7.10, abs=0.01)
    assert builtin_media.sound("boom").seconds == pytest.approx(1.13, abs=0.01)


def test_builtin_image_set_content():
    task = build_task("vqa_builtin_images", TaskOptions())
    samples = {s.id: s for s in task.samples()}
    assert len(samples) == 34 and all(s.error is None for s in samples.values())
    cat = samples["cat-object"]
    assert cat.choices[ord(cat.gold) - ord("A")] == "a cat" and len(cat.choices) == 4 and len(set(cat.choices)) == 4
    assert samples["cat-colour"].gold == "A" and samples["camera-colour"].gold == "B"  # in colour / black and white
    # The options come from a seeded draw: the same on every machine.
    assert cat.choices == build_task("vqa_builtin_images", TaskOptions()).samples()[4].choices


def test_builtin_sound_and_dialog_sets_content():
    sounds = {s.id: s for s in build_task("aqa_builtin_sounds", TaskOptions()).samples()}
    assert sounds["house-long"].gold == "yes" and sounds["boom-long"].gold == "no"
    assert sounds["house-music"].gold == "yes" and sounds["boom-source"].gold == ("explosion", "boom", "blast", "bang")
    dialogs = build_task("aij_builtin_dialogs", TaskOptions()).samples()
    types = {s.unit: s.metadata["dialog_type"] for s in dialogs}
    assert sorted(set(types.values())) == ["audio", "image", "image+audio", "text"]
    third = next(s for s in dialogs if s.id == "image-audio-1/3")
    assert third.follows == "image-audio-1/2" and third.media == () and third.gold == ("A cat.",)


def test_builtin_sets_are_written_once_into_the_cache():
    from s3eval import cache
    from tasks.vqa.builtin import build_images

    folder = builtin_media.ensure_set("vqa_builtin_images", build_images)
    assert folder == builtin_media.set_entry("vqa_builtin_images", build_images).path
    assert folder.parent == cache.cache_root() / "sets" and cache.is_complete(folder)
    stamp = (folder / "questions.jsonl").stat().st_mtime_ns
    assert builtin_media.ensure_set("vqa_builtin_images", build_images) == folder  # found, not rewritten
    assert (folder / "questions.jsonl").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("name", list(BUILTINS))
def test_builtin_set_runs_end_to_end_with_the_tiny_checkpoint(tmp_path, tiny_release, name):
    checkpoint, base = tiny_release
    config = RunConfig(model="s3", model_args={"checkpoint": str(checkpoint), "base": str(base), "device": "cpu"},
                       tasks=[TaskSpec(name)], output_dir=str(tmp_path / "runs"), leaderboard=str(tmp_path / "lb.csv"))  # fmt: skip
    outcome = run(config, show_progress=False)
    records = list(read_jsonl(outcome.run_dir / f"samples_{name}.jsonl"))
    assert len(records) == BUILTINS[name] == build_task(name, TaskOptions()).info.size
    assert [r["sample_id"] for r in records if r["error"] is not None] == []
    assert all(isinstance(r["response"], str) for r in records)
    result = outcome.results["tasks"][name]
    summary, headline = result["summary"], result["headline"]
    assert 0.0 <= headline["score"] <= 1.0 and summary["overall"]["n"] == BUILTINS[name]
    if name == "aij_builtin_dialogs":
        assert all(len(r["candidate_nll"]) == len(r["candidates"]) >= 2 for r in records)
        assert headline["details"]["weight_covered"] == pytest.approx(1.0)
    row = leaderboard.read(tmp_path / "lb.csv").iloc[0]
    assert (row["metric"], row["unit"], row["n"]) == (headline["metric"], headline["unit"], headline["n_units"])
    json.dumps(result)  # serialisable as written to results.json
