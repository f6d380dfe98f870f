"""Checkpoint sweeps (s3eval.sweep, s3eval.sweep_report): steps read from folder names, the base loaded once and
each checkpoint swapped in, every checkpoint an ordinary resumable run (the rows a separate `s3eval run` gives),
invalid checkpoints skipped, an interrupted sweep resumed to the same rows."""

import csv
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from s3eval.config import ConfigError, RunConfig, TaskSpec
from s3eval.runner import run
from s3eval.sweep import Checkpoint, SweepError, checkpoints_from, read_step, resolve_checkpoints, run_sweep
from s3eval import sweep_report


@pytest.mark.parametrize("name, step", [
    ("checkpoint-1200", 1200), ("checkpoint_7", 7), ("step-0", 0), ("ckpt-05", 5), ("run3/checkpoint-40", 40),
    ("final", None), ("checkpoint", None), ("checkpoint-12a", None),
])  # fmt: skip
def test_the_step_is_read_from_the_folder_name(name, step):
    assert read_step(Path(name)) == step


def test_checkpoints_come_in_step_order_and_bad_lists_are_refused(tmp_path):
    found = checkpoints_from([Path("a/checkpoint-200"), Path("a/checkpoint-50"), Path("a/checkpoint-1000")])
    assert [c.step for c in found] == [50, 200, 1000]
    assert [c.step for c in checkpoints_from([Path("x"), Path("y")], steps=[9, 3])] == [3, 9]
    with pytest.raises(SweepError, match=r"final: no step in the folder name .* pass --steps"):
        checkpoints_from([Path("final")])
    with pytest.raises(SweepError, match="both step 5"):
        checkpoints_from([Path("a/step-5"), Path("b/checkpoint-5")])
    with pytest.raises(SweepError, match="2 steps for 1 checkpoints"):
        checkpoints_from([Path("x")], steps=[1, 2])
    with pytest.raises(SweepError, match="matches no folder"):
        resolve_checkpoints([], str(tmp_path / "checkpoint-*"), None, "base")


@pytest.fixture
def series(tmp_path, tiny_release, sanity_release):
    """A training run's folder: step 0 = the tiny random release, step 50 = the trained sanity release (both on
    the same base), and step 20 = a checkpoint whose projector is corrupt."""
    (tiny, _), (trained, base) = tiny_release, sanity_release
    root = tmp_path / "train"
    root.mkdir()
    (root / "checkpoint-0").symlink_to(tiny, target_is_directory=True)
    (root / "checkpoint-50").symlink_to(trained, target_is_directory=True)
    broken = root / "checkpoint-20"
    shutil.copytree(trained, broken, symlinks=True)
    (broken / "projections" / "modality_adapters.pt").write_bytes(b"not a torch file")
    return root, base


def config_for(base, out, **extra):
    return RunConfig(model="s3", model_args={"base": str(base)}, limit=12, output_dir=str(out / "runs"),
                     leaderboard=str(out / "leaderboard.csv"),
                     tasks=[TaskSpec("sanity_image"), TaskSpec("sanity_audio")], **extra)  # fmt: skip


class Loads:
    """Counts base-model loads and media encodings across a sweep."""

    def __init__(self, monkeypatch):
        import transformers

        from s3eval.models.s3 import encoders

        self.base_loads, self.encoded = 0, 0
        real_load = transformers.AutoModelForCausalLM.from_pretrained
        real_encode = encoders.MediaEncoder.encode

        def load(*args, **kwargs):
            self.base_loads += 1
            return real_load(*args, **kwargs)

        def encode(encoder, kind, inputs):
            self.encoded += len(inputs)
            return real_encode(encoder, kind, inputs)

        monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", load)
        monkeypatch.setattr(encoders.MediaEncoder, "encode", encode)


def test_a_sweep_loads_the_base_once_encodes_media_once_and_gives_the_rows_of_separate_runs(series, tmp_path,
                                                                                          monkeypatch):
    root, base = series
    checkpoints, _ = resolve_checkpoints([], str(root / "checkpoint-*"), None, str(base))
    loads = Loads(monkeypatch)
    outcome = run_sweep(config_for(base, tmp_path / "sweep"), checkpoints, show_progress=False)
    assert [(e.checkpoint.step, e.status) for e in outcome.entries] == [(0, "done"), (20, "skipped"), (50, "done")]
    assert "modality_adapters.pt" in outcome.entries[1].reason
    assert loads.base_loads == 1
    assert loads.encoded == 24  # 12 images + 12 sounds, encoded for the first checkpoint and kept for the last

    # Each checkpoint's run is the run `s3eval run --checkpoint CKPT --base BASE` makes: same directory name,
    # same scores.
    for entry in (outcome.entries[0], outcome.entries[2]):
        alone = run(replace(config_for(base, tmp_path / "alone"), model_args={
            "base": str(base), "checkpoint": str(entry.checkpoint.path)}), show_progress=False)  # fmt: skip
        assert alone.run_dir.name == entry.run_dir.name
        assert alone.scores == {t: r.headline.score for t, r in entry.results.items()}
    assert outcome.entries[0].results["sanity_image"].headline.score <= 0.5
    assert outcome.entries[2].results["sanity_image"].headline.score == 1.0

    rows = sweep_report.summarize(outcome.entries)
    assert [(r.step, r.task, r.status) for r in rows] == [
        (0, "sanity_image", "done"), (0, "sanity_audio", "done"), (20, "sanity_image", "skipped"),
        (20, "sanity_audio", "skipped"), (50, "sanity_image", "done"), (50, "sanity_audio", "done")]  # fmt: skip
    best = sweep_report.best_rows(rows)
    assert best["sanity_image"].step == 50
    image_last = rows[4]
    assert image_last.vs_previous.delta == pytest.approx(1.0 - rows[0].score)
    assert image_last.vs_best is None and rows[0].vs_best.delta == pytest.approx(-image_last.vs_previous.delta)
    assert sweep_report.first_regressions(rows) == {}
    files = sweep_report.write(outcome.folder, rows, 0.05)
    with open(files[0], newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(w["step"], w["task"], w["best"]) for w in written][:2] == [("0", "sanity_image", "False"),
                                                                       ("0", "sanity_audio", "False")]  # fmt: skip
    assert files[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_sweep_interrupted_and_resumed_gives_the_rows_of_an_uninterrupted_one(series, tmp_path, monkeypatch):
    root, base = series
    checkpoints = [c for c in checkpoints_from(sorted(root.iterdir())) if c.step != 20]
    whole = run_sweep(config_for(base, tmp_path / "whole"), checkpoints, show_progress=False)

    from s3eval.models.s3.model import S3Model

    real = S3Model.generate_streaming
    calls = {"n": 0}

    def interrupted(self, requests, on_batch):
        calls["n"] += 1
        if calls["n"] == 3:  # the second checkpoint's first task, after the first checkpoint finished
            raise KeyboardInterrupt
        return real(self, requests, on_batch)

    monkeypatch.setattr(S3Model, "generate_streaming", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(config_for(base, tmp_path / "cut"), checkpoints, show_progress=False)
    monkeypatch.setattr(S3Model, "generate_streaming", real)
    resumed = run_sweep(config_for(base, tmp_path / "cut"), checkpoints, show_progress=False)

    def comparable(outcome):
        rows = sweep_report.summarize(outcome.entries)
        return [{k: v for k, v in r.flat().items() if k != "run_dir"} for r in rows]

    assert comparable(resumed) == comparable(whole)
    assert [e.run_dir.name for e in resumed.entries] == [e.run_dir.name for e in whole.entries]
    with open(tmp_path / "cut" / "leaderboard.csv", newline="") as handle:
        board = list(csv.DictReader(handle))
    assert len(board) == 4  # one row per checkpoint and task: the interrupted checkpoint appended none


def test_a_sweep_refuses_settings_it_cannot_honour(tmp_path):
    checkpoints = [Checkpoint(tmp_path, 1)]
    with pytest.raises(ConfigError, match="--model must be s3"):
        run_sweep(replace(config_for("b", tmp_path), model="constant"), checkpoints)
    with pytest.raises(ConfigError, match="drop --run-name"):
        run_sweep(replace(config_for("b", tmp_path), run_name="x"), checkpoints)
    with pytest.raises(ConfigError, match="needs --base"):
        run_sweep(replace(config_for("b", tmp_path), model_args={}), checkpoints)


def test_a_checkpoint_with_another_imagebind_gets_its_own_encoder(sanity_release, tmp_path, monkeypatch):
    import torch

    trained, base = sanity_release
    root = tmp_path / "train"
    root.mkdir()
    (root / "checkpoint-1").symlink_to(trained, target_is_directory=True)
    other = root / "checkpoint-2"
    shutil.copytree(trained, other)
    weights = other / "imagebind" / "imagebing_huge.pth"
    state = torch.load(weights, weights_only=True)
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = state[first] + 0.5  # another encoder: its features cannot be reused
    torch.save(state, weights)
    loads = Loads(monkeypatch)
    config = replace(config_for(base, tmp_path), tasks=[TaskSpec("sanity_image")], limit=6)
    outcome = run_sweep(config, checkpoints_from(sorted(root.iterdir())), show_progress=False)
    assert [e.status for e in outcome.entries] == ["done", "done"]
    assert loads.base_loads == 1 and loads.encoded == 12  # the six images encoded once per encoder


def test_the_sweep_command_prints_the_table_and_writes_its_files(series, tmp_path, capsys):
    from s3eval.cli import main

    root, base = series
    out = tmp_path / "out"
    argv = ["sweep", "--glob", str(root / "checkpoint-*"), "--base", str(base), "--tasks", "sanity_image",
            "--limit", "4", "--output-dir", str(out), "--no-leaderboard", "--quiet", "--sweep-dir", str(out / "s")]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "== step 20: " in printed.out and "skipped: invalid S³ release" in printed.out
    assert f"sanity_image: best checkpoint step 50 ({root / 'checkpoint-50'}): accuracy 100.0" in printed.out
    assert "1 of 3 checkpoint(s) skipped" in printed.err
    assert sorted(p.name for p in (out / "s").iterdir()) == ["summary.json", "sweep.csv", "sweep.json", "sweep.png"]
    assert main(["sweep", str(root / "checkpoint-20"), "--base", str(base), "--tasks", "sanity_image",
                 "--output-dir", str(out), "--no-leaderboard", "--quiet"]) == 1  # nothing could be evaluated
    assert main(["sweep", str(root / "checkpoint-0"), "--steps", "x", "--base", str(base), "--tasks",
                 "sanity_image"]) == 2
    assert capsys.readouterr().err.strip().endswith("--steps takes whole numbers separated by commas, got 'x'")
