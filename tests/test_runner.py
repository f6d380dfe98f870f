"""End to end with scripted fake models: run → results → leaderboard → rescore of its own JSONL."""

import json
import subprocess
import sys

import pytest

from s3eval import leaderboard
from s3eval.config import RunConfig, TaskSpec
from s3eval.models.scripted import ConstantModel
from s3eval.rescore import rescore_path
from s3eval.runner import run
from s3eval.storage import read_jsonl

from mmmu_snapshot import row, write_snapshot


def config(tmp_path, data, tasks=("mmmu_val",), **kw):
    return RunConfig(
        tasks=[TaskSpec(t) for t in tasks], data=str(data), output_dir=str(tmp_path / "runs"),
        leaderboard=str(tmp_path / "lb.csv"), **kw,
    )  # fmt: skip


def test_run_results_leaderboard_rescore_agree(tmp_path, mmmu_mini):
    outcome = run(config(tmp_path, mmmu_mini, model="constant", model_args={"answer": "B"}), show_progress=False)
    results = json.loads((outcome.run_dir / "results.json").read_text())
    task = results["tasks"]["mmmu_val"]
    assert task["settings"]["answer_key"] == "current" and task["settings"]["prompt_mode"] == "official-first-image"
    assert results["parser"] == {"name": "s3eval-answer-parser", "version": "1.0.0", "fallback_seed": 42}
    assert results["model"]["name"] == "constant" and len(results["config_hash"]) == 64
    overall = task["summary"]["overall"]
    assert overall["n"] == 90 and overall["n_error"] == 0

    records = list(read_jsonl(outcome.run_dir / "samples_mmmu_val.jsonl"))
    assert [r["sample_id"] for r in records][:2] == ["validation_Accounting_3", "validation_Accounting_4"]
    first = records[0]
    assert first["response"] == "B" and first["parsed"] == "B" and len(first["prompt_hash"]) == 64
    assert len(first["media_hashes"]) == 1 and first["parser_version"] == "1.0.0"
    responses = list(read_jsonl(outcome.run_dir / "responses.jsonl"))
    assert len(responses) == 90

    board = leaderboard.read(tmp_path / "lb.csv")
    assert len(board) == 1
    row_ = board.iloc[0]
    assert row_["task"] == "mmmu_val" and row_["n"] == 90 and row_["accuracy"] == pytest.approx(overall["accuracy"])
    assert set(json.loads(row_["group_accuracy"])) == {
        "Art and Design", "Business", "Science", "Health and Medicine", "Humanities and Social Science",
        "Tech and Engineering",
    }  # fmt: skip

    (again,) = rescore_path(outcome.run_dir)
    rescored = again.result.to_dict()
    # The gold hash is over the loaded dataset, which rescore does not read.
    assert rescored["settings"].pop("answer_key_hash") is None and task["settings"].pop("answer_key_hash")
    assert rescored == task and again.source == "task rebuilt from the run's arguments"


def test_replay_model_with_fallbacks_rescore_identically(tmp_path, mmmu_mini):
    responses = {f"validation_Art_{n}": "I am not sure" for n in (10, 25, 29)}
    responses["validation_Math_15"] = "so the answer is 24/7"
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(responses))
    cfg = config(tmp_path, mmmu_mini, model="replay", model_args={"responses": str(path)})
    cfg.tasks = [TaskSpec("mmmu_val", {"subjects": "Art,Math"})]
    outcome = run(cfg, show_progress=False)
    records = {r["sample_id"]: r for r in read_jsonl(outcome.run_dir / "samples_mmmu_val.jsonl")}
    assert [records[f"validation_Art_{n}"]["fallback"] for n in (10, 25, 29)] == [True, True, True]
    assert records["validation_Math_15"]["correct"] is True
    # Items without a replayed response are model errors, counted wrong and reported.
    assert records["validation_Math_1"]["error_kind"] == "model"
    overall = outcome.results["tasks"]["mmmu_val"]["summary"]["overall"]
    assert (overall["n"], overall["n_fallback"], overall["n_error"]) == (6, 3, 2)
    (again,) = rescore_path(outcome.run_dir / "samples_mmmu_val.jsonl")
    assert [r.parsed for r in again.records] == [records[r.sample_id]["parsed"] for r in again.records]
    # Replaying the run's own JSONL reproduces it.
    cfg2 = config(tmp_path, mmmu_mini, model="replay",
                  model_args={"responses": str(outcome.run_dir / "samples_mmmu_val.jsonl")}, run_name="replayed")  # fmt: skip
    cfg2.tasks = cfg.tasks
    replayed = run(cfg2, show_progress=False)
    assert replayed.results["tasks"]["mmmu_val"]["summary"] == outcome.results["tasks"]["mmmu_val"]["summary"]


def test_bad_rows_are_recorded_not_fatal(tmp_path):
    data = write_snapshot(tmp_path / "snap", [row("validation_Art_1"), row("validation_Art_2", options="oops")])
    cfg = config(tmp_path, data, model="constant")
    cfg.tasks = [TaskSpec("mmmu_val", {"subjects": "Art"})]
    outcome = run(cfg, show_progress=False)
    records = list(read_jsonl(outcome.run_dir / "samples_mmmu_val.jsonl"))
    assert records[1]["error"].startswith("validation_Art_2: field 'options'") and records[1]["correct"] is False
    overall = outcome.results["tasks"]["mmmu_val"]["summary"]["overall"]
    assert (overall["n"], overall["n_error"], overall["accuracy"], overall["accuracy_valid"]) == (2, 1, 0.5, 1.0)


def test_limit_and_max_new_tokens_reach_the_model(tmp_path, mmmu_mini, monkeypatch):
    seen = []

    class Recording(ConstantModel):
        def generate(self, requests):
            seen.extend(requests)
            return super().generate(requests)

    monkeypatch.setattr("s3eval.runner.build_model", lambda name, args: Recording("A"))
    outcome = run(config(tmp_path, mmmu_mini, limit=5, max_new_tokens=7, batch_size=2), show_progress=False)
    assert outcome.results["tasks"]["mmmu_val"]["summary"]["overall"]["n"] == 5
    assert [r.sample_id for r in seen] == [
        "validation_Accounting_3", "validation_Accounting_4", "validation_Accounting_7",
        "validation_Agriculture_5", "validation_Agriculture_6",
    ]  # fmt: skip
    assert {r.max_new_tokens for r in seen} == {7}


def test_test_split_writes_submission_not_scores(tmp_path):
    data = write_snapshot(tmp_path / "snap", [
        row("test_Art_1", answer="?"),
        row("test_Art_2", answer="?", question_type="open", options="[]"),
    ], split="test")  # fmt: skip
    cfg = config(tmp_path, data, tasks=("mmmu_test",), model="constant", model_args={"answer": " so it is (C) "})
    cfg.tasks = [TaskSpec("mmmu_test", {"subjects": "Art"})]
    outcome = run(cfg, show_progress=False)
    submission = json.loads((outcome.run_dir / "mmmu_test_submission.json").read_text())
    assert submission == {"test_Art_1": "C", "test_Art_2": "so it is (C)"}
    assert not (tmp_path / "lb.csv").exists()  # no gold, no leaderboard row


def test_tasks_listing_does_not_import_torch():
    code = "import sys; from s3eval.cli import main; main(['tasks']); assert 'torch' not in sys.modules; " \
           "assert 'datasets' not in sys.modules"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "mmmu_val " in out.stdout and "900" in out.stdout


class Streaming(ConstantModel):
    """Records what each call hands the model and every response-log append."""

    def __init__(self, fail_on=()):
        super().__init__("A")
        self.calls, self.batches, self.fail_on = [], [], set(fail_on)

    def generate_streaming(self, requests, on_batch):
        self.calls.append(len(requests))
        return super().generate_streaming(requests, on_batch)

    def generate(self, requests):
        if any(r.sample_id in self.fail_on for r in requests):
            raise RuntimeError("boom")
        self.batches.append([r.sample_id for r in requests])
        return super().generate(requests)


def test_the_model_gets_the_whole_task_and_each_batch_is_stored_as_it_completes(tmp_path, mmmu_mini, monkeypatch):
    from s3eval.response_log import ResponseLog

    model = Streaming()
    monkeypatch.setattr("s3eval.runner.build_model", lambda name, args: model)
    appends = []
    real = ResponseLog.append
    monkeypatch.setattr(ResponseLog, "append", lambda self, entries: appends.append(len(entries)) or real(self, entries))
    run(config(tmp_path, mmmu_mini, batch_size=32, run_name="a"), show_progress=False)
    assert model.calls == [90]  # all 90 pending requests in one hand-off (window 4096)
    assert [len(b) for b in model.batches] == [32, 32, 26] and appends == [32, 32, 26]  # durable per batch
    model.calls.clear()
    run(config(tmp_path, mmmu_mini, window=40, run_name="b"), show_progress=False)
    assert model.calls == [40, 40, 10]  # --window bounds a hand-off; batch_size unset: one batch per hand-off


def test_a_failing_batch_never_regenerates_the_batches_already_stored(tmp_path, mmmu_mini, monkeypatch):
    model = Streaming(fail_on={"validation_Art_10"})
    monkeypatch.setattr("s3eval.runner.build_model", lambda name, args: model)
    outcome = run(config(tmp_path, mmmu_mini, batch_size=8), show_progress=False)
    generated = [i for batch in model.batches for i in batch]
    assert len(generated) == len(set(generated)) == 89  # every other item generated exactly once
    log = list(read_jsonl(outcome.run_dir / "responses.jsonl"))
    assert len(log) == 90 and len({e["key"] for e in log}) == 90
    failed = [e for e in log if e["error"]]
    assert [e["sample_id"] for e in failed] == ["validation_Art_10"] and "boom" in failed[0]["error"]


def test_batch_size_and_window_do_not_change_the_run(tmp_path, mmmu_mini, monkeypatch):
    """Throughput knobs are not part of the run id: a run resumed with another batch size continues the same run
    directory and reuses every response."""
    from s3eval.config import ConfigError

    hashes = {config(tmp_path, mmmu_mini, **kw).result_hash() for kw in
              ({}, {"batch_size": 2}, {"batch_size": "auto"}, {"window": 7}, {"model_args": {"batch_size": "64"}})}  # fmt: skip
    assert len(hashes) == 1
    first = run(config(tmp_path, mmmu_mini, model="constant", batch_size=4), show_progress=False)
    again = run(config(tmp_path, mmmu_mini, model="constant", batch_size="auto", window=16), show_progress=False)
    assert again.run_dir == first.run_dir and again.resumed["mmmu_val"] == (90, 90)
    with pytest.raises(ConfigError, match=r"the GPU batch is given twice: batch_size 4 \(--batch-size\) and model "
                                          r"argument batch_size=8; give it once, with --batch-size"):  # fmt: skip
        config(tmp_path, mmmu_mini, batch_size=4, model_args={"batch_size": "8"}).validate()
    for bad in (0, "x", -3, True):
        with pytest.raises(ConfigError, match="batch_size must be a positive whole number or auto"):
            config(tmp_path, mmmu_mini, batch_size=bad).validate()
    with pytest.raises(ConfigError, match="window must be a positive integer, got 0"):
        config(tmp_path, mmmu_mini, window=0).validate()


def test_batch_size_flag_takes_auto_or_a_number(tmp_path, mmmu_mini, capsys):
    from s3eval.cli import main

    common = ["run", "--model", "constant", "--tasks", "mmmu_val", "--data", str(mmmu_mini), "--limit", "4", "--quiet",
              "--output-dir", str(tmp_path / "runs"), "--no-leaderboard"]  # fmt: skip
    assert main([*common, "--batch-size", "auto", "--window", "2"]) == 0
    capsys.readouterr()
    assert main([*common, "--batch-size", "3"]) == 0  # another batch size: the same run, nothing to redo
    assert "complete, nothing to generate: all 4 responses reused" in capsys.readouterr().out
    assert main([*common, "--batch-size", "many"]) == 2
    assert "batch_size must be a positive whole number or auto, got 'many'" in capsys.readouterr().err
