"""The trained sanity checkpoint answers from the media — ≥ 95 % with them, chance without them, with noise or with
another item's (`--media withhold|noise|shuffle`) — and the
CI gate catches a broken splice (media vectors zeroed on purpose). The checkpoint comes from the suite's cache
(the ``sanity_release`` fixture in conftest.py): trained on first use, then reused by later sessions."""

import pytest

from s3eval.config import RunConfig, TaskSpec
from s3eval.gate import check
from s3eval.runner import run
from s3eval.task import TaskError, TaskOptions
from s3eval.task_registry import build_task

from conftest import ROOT


def evaluate(release, tmp_path, media, run_name, leaderboard=None):
    checkpoint, base = release
    config = RunConfig(
        model="s3", model_args={"checkpoint": str(checkpoint), "base": str(base)},
        tasks=[TaskSpec("sanity_image"), TaskSpec("sanity_audio")], media=media,
        output_dir=str(tmp_path / "runs"), leaderboard=leaderboard, run_name=run_name,
    )  # fmt: skip
    outcome = run(config, show_progress=False)
    return outcome, {t: v["summary"]["overall"]["accuracy"] for t, v in outcome.results["tasks"].items()}


def test_sanity_sets_are_deterministic_and_balanced():
    image = build_task("sanity_image", TaskOptions()).samples()
    assert [s.gold for s in image[:8]] == list("ABCDABCD") and len(image) == 100
    again = build_task("sanity_image", TaskOptions()).samples()
    assert [m.content_hash() for s in image for m in s.media] == [m.content_hash() for s in again for m in s.media]
    assert [m.kind for m in build_task("sanity_audio", TaskOptions()).samples()[0].media] == ["audio"]
    assert build_task("sanity_audio", TaskOptions()).settings()["prompt_mode"] == "official-mc"
    for mode in ("withhold", "mute"):  # the run option replaced the task argument
        with pytest.raises(TaskError, match=r"^task 'sanity_audio': `media` is no longer a task argument; use the run "
                                            r"option --media MODE \(keep, withhold, noise, shuffle; config key "
                                            r"`media:`\)$"):  # fmt: skip
            build_task("sanity_audio", TaskOptions(args={"media": mode}))


def test_training_reached_its_held_out_target(sanity_release):
    import json

    from tasks.sanity.checkpoint import STOP_ACCURACY

    checkpoint, _ = sanity_release
    record = json.loads((checkpoint.parent / ".complete").read_text())
    assert record["trained"] == "sanity" and min(record["held_out_accuracy"].values()) >= STOP_ACCURACY, record


def test_answers_come_from_the_media(sanity_release, tmp_path):
    _, with_media = evaluate(sanity_release, tmp_path, "keep", "keep")
    assert with_media["sanity_image"] >= 0.95 and with_media["sanity_audio"] >= 0.95
    for mode in ("withhold", "noise", "shuffle"):
        _, without = evaluate(sanity_release, tmp_path, mode, mode)
        # Chance is 0.25 and 0.5; 100 items put a 99 % binomial range of about ±0.12 around it.
        assert without["sanity_image"] <= 0.37 and without["sanity_audio"] <= 0.63, (mode, without)


def test_gate_catches_zeroed_media_vectors(sanity_release, tmp_path, monkeypatch):
    baseline = ROOT / "results" / "baseline.csv"
    good, _ = evaluate(sanity_release, tmp_path, "keep", "good")
    assert all(r.passed for r in check(good.run_dir, baseline, mode="tolerance", tolerance=0.05))

    from s3eval.models.s3 import engine

    real_project = engine.project
    monkeypatch.setattr(engine, "project", lambda *a, **k: real_project(*a, **k) * 0)  # the injected fault
    broken, accuracy = evaluate(sanity_release, tmp_path, "keep", "broken")
    assert accuracy["sanity_image"] <= 0.37
    results = check(broken.run_dir, baseline, mode="tolerance", tolerance=0.05)
    assert [r.passed for r in results] == [False, False]
    assert results[0].reason.startswith("accuracy 0.")
    assert all(not r.passed for r in check(broken.run_dir, baseline, mode="test", alpha=0.01))
