"""Never lose work: resume from the response log, kill-and-resume at random points, failing batches, full
disks, and determinism."""

import errno
import json
import random
import signal
import subprocess
import sys
import time

import pytest

from s3eval import leaderboard, storage
from s3eval.config import RunConfig, TaskSpec
from s3eval.models.scripted import ConstantModel, ReplayModel
from s3eval.runner import RunError, run
from s3eval.storage import StorageError, read_jsonl

from conftest import ROOT
from mmmu_snapshot import row, write_snapshot


@pytest.fixture
def snapshot(tmp_path):
    """60 Art items: enough batches to kill a run in the middle of."""
    rows = [row(f"validation_Art_{n}", answer="ABCD"[n % 4]) for n in range(1, 61)]
    return write_snapshot(tmp_path / "snap", rows)


def config(tmp_path, data, **kw):
    values = dict(model="constant", tasks=[TaskSpec("mmmu_val", {"subjects": "Art"})], data=str(data),
                  output_dir=str(tmp_path / "runs"), leaderboard=str(tmp_path / "lb.csv"), batch_size=4)  # fmt: skip
    values.update(kw)
    return RunConfig(**values)


class Counting(ConstantModel):
    def __init__(self, answer="B", fail_on=()):
        super().__init__(answer)
        self.seen, self.fail_on = [], set(fail_on)

    def generate(self, requests):
        if any(r.sample_id in self.fail_on for r in requests):
            raise RuntimeError("boom")
        self.seen.extend(r.sample_id for r in requests)
        return super().generate(requests)


def use(monkeypatch, model):
    monkeypatch.setattr("s3eval.runner.build_model", lambda name, args: model)
    return model


def samples(outcome):
    return list(read_jsonl(outcome.run_dir / "samples_mmmu_val.jsonl"))


def test_rerun_reuses_every_response_and_adds_no_row(tmp_path, snapshot, monkeypatch):
    model = use(monkeypatch, Counting())
    first = run(config(tmp_path, snapshot), show_progress=False)
    assert len(model.seen) == 60
    again = use(monkeypatch, Counting())
    second = run(config(tmp_path, snapshot), show_progress=False)
    assert again.seen == [] and second.run_dir == first.run_dir
    assert samples(first) == samples(second)
    assert len(leaderboard.read(tmp_path / "lb.csv")) == 1
    fresh = use(monkeypatch, Counting())
    run(config(tmp_path, snapshot), show_progress=False, fresh=True)
    assert len(fresh.seen) == 60 and len(leaderboard.read(tmp_path / "lb.csv")) == 2


def test_a_changed_checkpoint_never_reuses_stale_answers(tmp_path, snapshot):
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps({f"validation_Art_{n}": "A" for n in range(1, 61)}))
    cfg = config(tmp_path, snapshot, model="replay", model_args={"responses": str(responses)})
    assert {r["parsed"] for r in samples(run(cfg, show_progress=False))} == {"A"}
    responses.write_text(json.dumps({f"validation_Art_{n}": "C" for n in range(1, 61)}))
    assert {r["parsed"] for r in samples(run(cfg, show_progress=False))} == {"C"}
    # Same config, other model content: a new run, so it gets its own leaderboard row.
    board = leaderboard.read(tmp_path / "lb.csv")
    assert len(board) == 2 and board["checkpoint_hash"].nunique() == 2
    assert ReplayModel.from_args({"responses": str(responses)}).identity.checkpoint_hash


def test_failing_batch_is_split_and_only_the_culprit_is_an_error(tmp_path, snapshot, monkeypatch):
    use(monkeypatch, Counting(fail_on={"validation_Art_7"}))
    outcome = run(config(tmp_path, snapshot), show_progress=False)
    records = {r["sample_id"]: r for r in samples(outcome)}
    assert records["validation_Art_7"]["error"] == "generation failed: RuntimeError: boom"
    assert records["validation_Art_7"]["error_kind"] == "model"
    assert sum(r["error"] is not None for r in records.values()) == 1
    # The failed item is retried on the next run, the others are not regenerated.
    retry = use(monkeypatch, Counting())
    run(config(tmp_path, snapshot), show_progress=False)
    assert retry.seen == ["validation_Art_7"]


def test_fail_fast_stops_at_the_first_error(tmp_path, snapshot, monkeypatch):
    use(monkeypatch, Counting(fail_on={"validation_Art_7"}))
    with pytest.raises(RuntimeError, match="boom"):
        run(config(tmp_path, snapshot), show_progress=False, fail_fast=True)
    bad = write_snapshot(tmp_path / "bad", [row("validation_Art_1"), row("validation_Art_2", options="x")])
    with pytest.raises(RunError, match="--fail-fast: mmmu_val sample validation_Art_2: validation_Art_2: field 'options'"):
        run(config(tmp_path, bad), show_progress=False, fail_fast=True)


def test_disk_full_is_a_clear_error_and_corrupts_nothing(tmp_path, snapshot, monkeypatch):
    use(monkeypatch, Counting())
    calls = {"n": 0}
    real_write = storage.os.write

    def flaky_write(fd, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(storage.os, "write", flaky_write)
    with pytest.raises(StorageError, match=r"cannot append to .*responses.jsonl: No space left on device"):
        run(config(tmp_path, snapshot), show_progress=False)
    monkeypatch.setattr(storage.os, "write", real_write)
    log = next((tmp_path / "runs").glob("*/responses.jsonl"))
    assert len(list(read_jsonl(log))) == 16  # four whole batches, nothing torn
    resumed = use(monkeypatch, Counting())
    run(config(tmp_path, snapshot), show_progress=False)
    assert len(resumed.seen) == 44


def test_unwritable_output_folder(tmp_path, snapshot, monkeypatch):
    use(monkeypatch, Counting())
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot create run directory"):
        run(config(tmp_path, snapshot, output_dir=str(blocker / "runs")), show_progress=False)


def test_same_command_twice_fresh_is_identical_apart_from_timings(tmp_path, snapshot, monkeypatch):
    use(monkeypatch, Counting())
    a = samples(run(config(tmp_path, snapshot), show_progress=False))
    use(monkeypatch, Counting())
    b = samples(run(config(tmp_path, snapshot), show_progress=False, fresh=True))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
    rows = leaderboard.read(tmp_path / "lb.csv").drop(columns=["timestamp"])
    assert rows.iloc[0].equals(rows.iloc[1])


def test_torn_response_log_is_repaired(tmp_path, snapshot, monkeypatch):
    use(monkeypatch, Counting())
    outcome = run(config(tmp_path, snapshot), show_progress=False)
    log = outcome.run_dir / "responses.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:10]) + lines[10][:25])  # killed in the middle of a line
    again = use(monkeypatch, Counting())
    assert samples(run(config(tmp_path, snapshot), show_progress=False)) == samples(outcome)
    assert len(again.seen) == 50


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path, snapshot):
    """A real subprocess killed with SIGKILL many times, then resumed to the end, equals an uninterrupted run."""
    base = ["--model", "constant", "--model-arg", "answer=B", "--model-arg", "delay=0.01", "--tasks", "mmmu_val",
            "--task-arg", "subjects=Art", "--data", str(snapshot), "--batch-size", "3", "--quiet"]  # fmt: skip

    def command(name):
        return [sys.executable, str(ROOT / "run_eval.py"), "run", *base, "--output-dir", str(tmp_path / name),
                "--leaderboard", str(tmp_path / f"{name}.csv")]  # fmt: skip

    subprocess.run(command("reference"), check=True, capture_output=True, cwd=ROOT)
    rng = random.Random(1234)
    kills = 0
    for _ in range(40):
        process = subprocess.Popen(command("killed"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 2.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        if process.returncode == 0:
            break
    else:
        subprocess.run(command("killed"), check=True, capture_output=True, cwd=ROOT)
    assert kills >= 3
    subprocess.run(command("killed"), check=True, capture_output=True, cwd=ROOT)  # once more after completion

    def outputs(name):
        (run_dir,) = (tmp_path / name).iterdir()
        records = [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(run_dir / "samples_mmmu_val.jsonl")]
        log = list(read_jsonl(run_dir / "responses.jsonl"))
        board = leaderboard.read(tmp_path / f"{name}.csv")
        return records, log, board, json.loads((run_dir / "results.json").read_text())

    ref_records, _, ref_board, ref_results = outputs("reference")
    records, log, board, results = outputs("killed")
    assert records == ref_records
    assert len(records) == 60 and len({r["sample_id"] for r in records}) == 60
    assert len({entry["key"] for entry in log}) == 60  # every response stored, none generated twice
    assert len(log) == 60
    assert len(board) == 1  # one row, also after the extra completed re-run
    assert results["tasks"] == ref_results["tasks"]
    columns = ["accuracy", "strict_accuracy", "n", "n_fallback", "n_error", "group_accuracy", "parser_version"]
    assert board[columns].equals(ref_board[columns])
