"""Fault drills at the command line: hostile names, bad encodings and types, interrupts and closed pipes each end
in one line and a documented exit code, never a traceback, and nothing is written where it must not be."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from s3eval.cli import main
from s3eval.task_registry import load_definitions

from media_factory import noise_png

ROOT = Path(__file__).resolve().parent.parent


def write_set(folder, lines):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "a.png").write_bytes(noise_png(1))
    (folder / "questions.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def line(**row) -> bytes:
    return json.dumps({"id": 1, "question": "Which?", "image": "images/a.png", "choices": ["x", "y"], "answer": "A",
                       **row}).encode()  # fmt: skip


def definition(tmp_path, name, **extra):
    entry = {"name": name, "path": "set", "modality": "image", "question_type": "choice", "metric": "choice_letter",
             **extra}  # fmt: skip
    path = tmp_path / f"defs_{abs(hash(name))}.yaml"
    path.write_text(json.dumps({"tasks": [entry]}))
    return path


@pytest.mark.parametrize("name", ["../../x", "a/b", "/abs", "..", ".", "", "-flag", "=cmd"])
def test_hostile_task_names_in_a_definition_are_refused(tmp_path, capsys, name):
    write_set(tmp_path / "set", [line()])
    path = definition(tmp_path, name)
    assert main(["tasks", "--define", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"s3eval: error: {path}: task 1: `name` ") and err.count("\n") == 1
    assert "is not a valid name" in err or "must be a non-empty name" in err


@pytest.mark.parametrize("run_name", ["../..", "/tmp/x", ".", "a/b", ".."])
def test_hostile_run_names_are_refused_before_anything_is_written(tmp_path, capsys, run_name):
    code = main(["run", "--model", "constant", "--tasks", "sanity_image", "--limit", "1", "--run-name", run_name,
                 "--output-dir", str(tmp_path / "runs"), "--no-leaderboard", "--quiet"])  # fmt: skip
    assert code == 2 and "run name (--run-name)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_media_paths_may_not_leave_the_set_folder_unless_media_root_says_so(tmp_path):
    (tmp_path / "outside.png").write_bytes(noise_png(3))
    write_set(tmp_path / "set", [line(image="../outside.png"), line(id=2)])
    [name] = load_definitions(definition(tmp_path, "escape_set"))
    from s3eval.task import TaskOptions
    from s3eval.task_registry import build_task

    samples = build_task(name, TaskOptions()).samples()
    assert "`image` path '../outside.png' leaves the media folder" in samples[0].error
    assert "set `media_root:`" in samples[0].error and samples[1].error is None
    # With media_root set, paths are relative to it and may reach anything under it.
    write_set(tmp_path / "set2", [line(image="outside.png")])
    [allowed] = load_definitions(definition(tmp_path, "escape_allowed", path="set2", media_root="."))
    rows = build_task(allowed, TaskOptions()).samples()
    assert rows[0].error is None and rows[0].media[0].path == str((tmp_path / "outside.png").resolve())


def test_invalid_utf8_in_questions_is_an_error_record_naming_the_line(tmp_path):
    write_set(tmp_path / "set", [line(), b'{"id": 2, "question": "caf\xe9"}'])
    [name] = load_definitions(definition(tmp_path, "latin1_set"))
    from s3eval.task import TaskOptions
    from s3eval.task_registry import build_task

    samples = build_task(name, TaskOptions()).samples()
    assert samples[0].error is None
    assert samples[1].error.endswith(":2 (id line2): not valid UTF-8 (byte 0xe9 at column 27); save the file as UTF-8")


@pytest.mark.parametrize("extra,message", [
    ({"prompt_suffix": [1, 2]}, "`prompt_suffix` must be a string, got [1, 2]"),
    ({"description": {"a": 1}}, "`description` must be a string"),
    ({"media_root": 3}, "`media_root` must be a string, got 3"),
])  # fmt: skip
def test_bad_types_in_a_definition_are_one_line(tmp_path, capsys, extra, message):
    write_set(tmp_path / "set", [line()])
    assert main(["tasks", "--define", str(definition(tmp_path, "typed_set", **extra))]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import s3eval.cli as cli

    monkeypatch.setattr(cli, "_cmd_tasks", lambda args: 1 / 0)
    assert main(["tasks"]) == 70
    err = capsys.readouterr().err
    assert err == ("s3eval: internal error: ZeroDivisionError: division by zero (run again with --debug for the "
                   "traceback, and please report it)\n")  # fmt: skip
    with pytest.raises(ZeroDivisionError):
        main(["tasks", "--debug"])


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    import s3eval.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_tasks", interrupted)
    assert main(["tasks"]) == 130
    assert capsys.readouterr().err == "s3eval: interrupted; run the same command again to resume\n"


def test_a_closed_pipe_ends_quietly():
    # `s3eval tasks -v | head -1`: the reader leaves early; no traceback, exit 141 as a SIGPIPE'd program.
    process = subprocess.Popen([sys.executable, "-m", "s3eval.cli", "tasks", "-v"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    process.stdout.readline()
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 141) and err == b""


def test_the_s3_backend_on_the_light_install_says_what_to_install(monkeypatch, capsys):
    import s3eval.cli as cli

    def missing_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli, "_cmd_run", missing_torch)
    assert main(["run", "--tasks", "sanity_image"]) == 2
    assert capsys.readouterr().err == ("s3eval: error: the s3 backend needs PyTorch, transformers and ImageBind (No "
                                       "module named 'torch'): install them with pip install -e '.[s3]'\n")  # fmt: skip


def test_a_task_whose_every_item_failed_in_the_model_gets_no_row_and_exit_1(tmp_path, capsys):
    responses = tmp_path / "none.json"
    responses.write_text("{}")  # the replay backend has an answer for no item: each is a model error
    code = main(["run", "--model", "replay", "--model-arg", f"responses={responses}", "--tasks", "sanity_image",
                 "--limit", "3", "--output-dir", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "lb.csv"),
                 "--run-name", "broken", "--quiet"])  # fmt: skip
    assert code == 1 and not (tmp_path / "lb.csv").exists()
    err = capsys.readouterr().err
    assert err.startswith("s3eval: error: task sanity_image: all 3 items failed in the model (see `error` in ")
    assert err.rstrip().endswith("no leaderboard row written")


def test_two_identical_runs_at_once_exclude_each_other(tmp_path):
    # Found: two runs of the same config at once each regenerated what the other was writing and both appended a
    # leaderboard row. Now the second stops at once, naming the first.
    # The first sleeps 1 s per item (16 s in all), ample for the second to start on a busy machine.
    args = [sys.executable, "-m", "s3eval.cli", "run", "--model", "constant", "--model-arg", "delay=1", "--tasks",
            "sanity_image", "--limit", "16", "--output-dir", str(tmp_path / "runs"), "--leaderboard",
            str(tmp_path / "lb.csv"), "--quiet"]  # fmt: skip
    first = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = None
    while first.poll() is None and run_dir is None:  # wait until the first holds its run directory
        locks = list((tmp_path / "runs").glob("*/.lock")) if (tmp_path / "runs").exists() else []
        run_dir = locks[0].parent if locks and locks[0].stat().st_size else None
    second = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2 and f"{run_dir} is in use by pid {first.pid}" in second.stderr
    assert second.stderr.count("\n") == 1
    board = (tmp_path / "lb.csv").read_text().splitlines()
    assert len(board) == 2  # the header and one row
    responses = (run_dir / "responses.jsonl").read_text().splitlines()
    assert len(responses) == 16
    results, manifest = json.loads((run_dir / "results.json").read_text()), json.loads((run_dir / "run.json").read_text())
    assert results["timestamp"] == manifest["timestamp"]
