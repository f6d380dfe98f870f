"""AI-Journey-style dialogs: the format, history through the runner and into S³'s prompt, the likelihood
proxy, the integral score."""

import json

import pandas as pd
import pytest

from s3eval.config import RunConfig, TaskSpec
from s3eval.distributed import Shard
from s3eval.runner import run
from s3eval.storage import read_jsonl
from s3eval.task_registry import load_definitions
from s3eval.types import Media, Request, Turn

from conftest import SHARED, need
from dialog_factory import TWO_DIALOGS, RecordingModel, img, t, write_dialog_set
from tasks.aij.dialogs import read_dialogs
from tasks.aij.integral import CONTEST_NAMES, WEIGHTS, integral_score
from tasks.aij.task import draw_distractors


def define(tmp_path, dialogs=TWO_DIALOGS, **extra) -> str:
    folder = write_dialog_set(tmp_path / "set", dialogs)
    name = f"dlg_{tmp_path.name}"
    entry = {"name": name, "format": "dialog", "path": str(folder), **extra}
    (tmp_path / "defs.yaml").write_text(json.dumps({"tasks": [entry]}))  # JSON is YAML
    load_definitions(tmp_path / "defs.yaml")
    return name


def go(tmp_path, name, model="recording", **kw):
    kw.setdefault("leaderboard", None)
    config = RunConfig(model=model, tasks=[TaskSpec(name)], output_dir=str(tmp_path / "runs"), **kw)
    outcome = run(config, show_progress=False)
    return outcome, {r["sample_id"]: r for r in read_jsonl(outcome.run_dir / f"samples_{name}.jsonl")}


def test_history_reaches_the_model_turn_by_turn(tmp_path):
    name = define(tmp_path)
    RecordingModel.requests.clear(), RecordingModel.scored.clear()
    _, records = go(tmp_path, name)
    asked = {r.sample_id: r for r in RecordingModel.requests}
    assert list(records) == ["d1/1", "d1/2", "d1/3", "d2/1"]
    assert [records[k]["response"] for k in records] == ["answer 0", "answer 1", "answer 2", "answer 0"]
    third = asked["d1/3"]
    assert [turn.answer for turn in third.history] == ["answer 0", "answer 1"]  # the model's own answers
    first_parts = third.history[0].parts
    assert first_parts[0] == "What is this?" and isinstance(first_parts[1], Media) and first_parts[1].kind == "image"
    assert third.history[1].parts[0] == "And this sound?" and third.history[1].parts[1].kind == "audio"
    assert third.query() == ("What did I show first?",) and asked["d2/1"].history == ()
    # Candidates are scored in the same context as the answer was generated in.
    scored = [s for s in RecordingModel.scored if s.request.sample_id == "d1/3"]
    assert [s.continuation for s in scored] == ["a picture", "a sound"]
    assert all(len(s.request.history) == 2 for s in scored)
    assert records["d1/3"]["unit"] == "d1" and records["d1/2"]["gold"] == ["a tone", "a beep"]
    assert records["d1/2"]["candidates"] == ["a tone", "a picture"] and records["d1/2"]["candidate_nll"] == [1.0, 1.0]


def test_resume_replays_every_turn_from_the_log(tmp_path):
    name = define(tmp_path)
    _, first = go(tmp_path, name)
    RecordingModel.requests.clear(), RecordingModel.scored.clear()
    _, second = go(tmp_path, name)
    assert RecordingModel.requests == [] and RecordingModel.scored == []
    assert {k: (r["response"], r["candidate_nll"]) for k, r in first.items()} == {
        k: (r["response"], r["candidate_nll"]) for k, r in second.items()
    }


def test_a_failed_turn_fails_the_rest_of_its_dialog_only(tmp_path):
    name = define(tmp_path)
    _, records = go(tmp_path, name, model_args={"fail_on": "d1/2"})
    assert records["d1/1"]["error"] is None
    assert records["d1/2"]["error"].startswith("generation failed: RuntimeError: scripted failure")
    assert records["d1/3"]["error"].startswith("previous turn d1/2 failed: generation failed")
    assert records["d2/1"]["error"] is None and records["d2/1"]["response"] == "answer 0"


def test_integral_and_proxy_by_hand(tmp_path):
    name = define(tmp_path)
    outcome, records = go(tmp_path, name, model="constant", model_args={"answer": "Paris"})
    # d2/1: METEOR("Paris", "Paris") = 1 · (1 − 0.5 · (1/1)^3) = 0.5; the constant model makes "Paris" the
    # likeliest candidate (0 vs 1 nat per word), so the proxy is 1; turn score (0.5 + 1) / 2 = 0.75.
    assert records["d2/1"]["scores"] == {"meteor": 0.5, "likelihood_proxy": 1.0} and records["d2/1"]["score"] == 0.75
    # d1: no word in common with "Paris"; every candidate costs 1 nat per word, a tie, so the reference is not
    # strictly likeliest: every turn scores 0.
    assert [records[f"d1/{k}"]["score"] for k in (1, 2, 3)] == [0.0, 0.0, 0.0]
    result = outcome.results["tasks"][name]
    headline, details = result["headline"], result["headline"]["details"]
    # integral = 0.1 · 0.75 (text) + 0.4 · 0 (image+audio); the two types carry 0.5 of the weight.
    assert headline["metric"] == "integral" and headline["score"] == pytest.approx(0.075, abs=1e-12)
    assert (headline["kind"], headline["unit"], headline["n_units"], headline["aggregation"]) == (
        "graded", "dialog", 2, "weighted")
    assert headline["interval"] is None and (result["kind"], result["unit"]) == ("graded", "dialog")
    assert details["weight_covered"] == pytest.approx(0.5) and details["turns"] == 4
    assert details["meteor"] == pytest.approx(0.25) and details["hidden_metric_PROXY"] == pytest.approx(0.5)


def test_a_dialog_row_states_its_unit_and_gets_no_binomial_interval(tmp_path):
    # Found: a dialog run's mean turn score (0.1875 over 16 turns) got a binomial 95 % interval in the leaderboard.
    from s3eval import leaderboard

    name = define(tmp_path)
    go(tmp_path, name, model="constant", model_args={"answer": "Paris"}, leaderboard=str(tmp_path / "lb.csv"))
    row = leaderboard.read(tmp_path / "lb.csv").iloc[-1]
    assert (row["metric"], row["metric_kind"], row["unit"], row["n"], row["n_items"]) == (
        "integral", "graded", "dialog", 2, 4)
    assert pd.isna(row["ci_low"]) and pd.isna(row["ci_high"]) and row["ci_method"] == ""
    line = next(l for l in leaderboard.format_table(leaderboard.read(tmp_path / "lb.csv")).splitlines() if name in l)
    assert "–" not in line and " 7.5 " in line and "dialog" in line


def test_meteor_only_when_the_proxy_is_off(tmp_path):
    name = define(tmp_path, proxy=False)
    outcome, records = go(tmp_path, name, model="replay", model_args={"responses": str(_replies(tmp_path))})
    assert records["d1/1"]["candidates"] == [] and records["d1/1"]["metric"] == "meteor"
    # "a picture" vs itself: 2 matches in 1 chunk, penalty 0.5 · (1/2)^3 = 0.0625 → 0.9375.
    assert records["d1/1"]["score"] == pytest.approx(0.9375, abs=1e-12)
    assert outcome.results["tasks"][name]["headline"]["metric"] == "integral_meteor_only"


def test_rescore_keeps_the_runs_task_arguments(tmp_path, capsys):
    # Found: a run made with proxy=false came back from rescore as `integral` with both halves zero.
    from s3eval.cli import main
    from s3eval.rescore import TaskOverrides, rescore_path

    name = define(tmp_path)
    config = RunConfig(model="replay", model_args={"responses": str(_replies(tmp_path))},
                       tasks=[TaskSpec(name, {"proxy": "false"})], output_dir=str(tmp_path / "runs"), leaderboard=None)
    outcome = run(config, show_progress=False)
    recorded = outcome.results["tasks"][name]
    [again] = rescore_path(outcome.run_dir)
    assert again.result.headline == outcome.tasks[0].headline and again.result.arguments == {"proxy": "false"}
    assert again.result.headline.metric == "integral_meteor_only" and again.source == "task rebuilt from the run's arguments"
    assert again.result.summary == recorded["summary"]
    # Flags override what the run recorded, and the override is recorded with the result.
    [overridden] = rescore_path(outcome.run_dir, overrides=TaskOverrides({"proxy": "true"}))
    assert overridden.result.arguments == {"proxy": "true"} and overridden.source == "task rebuilt from the run's arguments + flags"
    assert overridden.result.headline.metric == "integral"
    assert main(["rescore", str(outcome.run_dir), "--task-arg", "proxy=false"]) == 0
    out = capsys.readouterr().out
    assert f"{name}: task rebuilt from the run's arguments + flags (proxy=false)" in out and "integral_meteor_only" in out


def _replies(tmp_path):
    path = tmp_path / "replies.json"
    path.write_text(json.dumps({"d1/1": "a picture", "d1/2": "a beep", "d1/3": "no", "d2/1": "Paris"}))
    return path


def test_models_without_likelihoods_are_refused_up_front(tmp_path):
    from s3eval.runner import RunError

    name = define(tmp_path)
    with pytest.raises(RunError, match="scores candidate answers by likelihood, which model 'replay' cannot do"):
        go(tmp_path, name, model="replay", model_args={"responses": str(_replies(tmp_path))})


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ({"id": "x", "dialog": [[t("q")]], "answers": []}, "`answers` must list one reference"),
    ({"id": "x", "dialog": [[{"type": "video", "content": "v.mp4"}]], "answers": ["a"]}, "part type 'video'"),
    ({"id": "x", "dialog": [[t("q"), img("missing.png")]], "answers": ["a"]}, "image file 'missing.png' not found"),
    ({"id": "x", "dialog": [[t("q")]], "answers": ["a"], "speaker": "me"}, "unknown field(s) ['speaker']"),
    ({"id": "x", "dialog": [], "answers": []}, "`dialog` must be a non-empty list"),
    ({"id": "x", "dialog": [[t("q")]], "answers": [""]}, "answer of replica 1 must be a non-empty string"),
    ({"id": "d2", "dialog": [[t("q")]], "answers": ["a"]}, "id 'd2' is used twice"),
])  # fmt: skip
def test_bad_dialogs_become_error_records_naming_the_line(tmp_path, line, problem):
    folder = write_dialog_set(tmp_path / "set", TWO_DIALOGS)
    text = json.dumps(line) if isinstance(line, dict) else line
    with open(folder / "dialogs.jsonl", "a") as handle:
        handle.write(text + "\n")
    name = f"dlg_{tmp_path.name}"
    (tmp_path / "defs.yaml").write_text(f"name: {name}\nformat: dialog\npath: set\nproxy: false\n")
    load_definitions(tmp_path / "defs.yaml")
    _, records = go(tmp_path, name)
    bad = list(records.values())[-1]
    assert bad["error_kind"] == "data" and "dialogs.jsonl:3" in bad["error"] and problem in bad["error"]
    assert records["d1/3"]["error"] is None and records["d1/3"]["response"] == "answer 2"


def test_the_contests_own_examples_read_as_written(tmp_path):
    """The FBC3 README's dialogs and the query quoted from participant code (``../shared``), with the README's
    placeholder paths pointed at real files: parts keep their order and kinds, media resolve in images/ and
    audios/."""
    examples = json.loads(need(SHARED / "vqa_aqa_samples" / "fbc3_format_examples.json").read_text())
    named = {"path_to_the_image": "00000.png", "path_to_the_audio": "00000.wav"}
    query = examples["observed_in_participant_code"]["cur_query_tuple"][0]
    dialogs = [*examples["dialogs"], *([turn] for turn in examples["single_turn_examples"]), [query]]
    rows = [{"id": f"e{i}", "dialog": [[{**p, "content": named.get(p["content"], p["content"])} for p in replica]
                                      for replica in dialog], "answers": ["x"] * len(dialog)}
            for i, dialog in enumerate(dialogs)]  # fmt: skip
    read = read_dialogs(write_dialog_set(tmp_path / "set", rows) / "dialogs.jsonl")
    assert [d.error for d in read] == [None] * 6
    assert [d.type for d in read] == ["text", "audio", "image", "image", "audio", "image+audio"]
    for dialog, raw in zip(read, dialogs):
        kinds = [[p.kind if isinstance(p, Media) else "text" for p in replica] for replica in dialog.replicas]
        assert kinds == [[p["type"] for p in replica] for replica in raw]
    last = read[-1].replicas[0]
    assert last[0] == "What common between those picture and sounds?"
    media = [(p.path.split("/set/")[1], p.name) for p in last[1:]]
    assert media == [("images/00001.png", "image_1"), ("audios/00000.wav", "audio_1")]
    assert {CONTEST_NAMES[k]: w for k, w in WEIGHTS.items()} == examples["metric_weights"]


def test_integral_score_by_hand():
    result = integral_score({"a": 1.0, "b": 0.5, "c": 0.25}, {"a": "text", "b": "image", "c": "image"})
    # 0.1 · 1.0 + 0.2 · (0.5 + 0.25) / 2 = 0.1 + 0.075
    assert result["integral"] == pytest.approx(0.175, abs=1e-15) and result["weight_covered"] == pytest.approx(0.3)
    assert result["by_type"]["Image2Text"] == {"dialogs": 2, "mean": 0.375, "weight": 0.2}
    full = integral_score({"a": 1, "b": 1, "c": 1, "d": 1}, {"a": "text", "b": "image", "c": "audio", "d": "image+audio"})
    assert full["integral"] == pytest.approx(1.0) and full["weight_covered"] == pytest.approx(1.0)


def test_drawn_distractors_are_seeded_by_sample_and_exclude_the_references():
    pool = ["a", "b", "c", "d", "e"]
    first = draw_distractors("d1/1", ["a"], pool, 3)
    assert first == draw_distractors("d1/1", ["a"], pool, 3) and "a" not in first and len(set(first)) == 3
    assert draw_distractors("d1/1", ["a", "b", "c", "d"], pool, 3) == ("e",)


def test_shards_keep_a_dialogs_turns_together():
    items = ["d1/1", "d1/2", "d2/1", "d3/1", "d3/2", "d3/3"]
    unit = lambda s: s.split("/")[0]
    shares = [Shard(rank, 2).take(items, unit_of=unit) for rank in (0, 1)]
    assert shares == [["d1/1", "d1/2", "d3/1", "d3/2", "d3/3"], ["d2/1"]]


def test_s3_prompt_holds_the_history_and_the_model_conditions_on_it(tiny_model):
    from s3eval.models.s3 import engine
    from s3eval.models.s3.prompt import NOTEBOOK_SYSTEM_PROMPT, dialog_pieces, modality_block

    from media_factory import audio, image

    picture, tone = image(3), audio(440, 1.0)
    turn1 = Request.of_parts("t", "d/1", ["What is this?", picture])
    turn2 = Request.of_parts("t", "d/2", ["And this sound?", tone], history=(Turn(turn1.query(), "a picture"),))
    assert dialog_pieces(turn2, NOTEBOOK_SYSTEM_PROMPT) == [
        "<s>", "<RS><system>", NOTEBOOK_SYSTEM_PROMPT, "</RS>",
        "<RS><user>", "What is this?", "</RS>", "<RS><user>", modality_block("image"), "</RS>",
        "<RS><bot>", "a picture</RS>",
        "<RS><user>", "And this sound?", "</RS>", "<RS><user>", modality_block("audio"), "</RS>", "<RS><bot>",
    ]  # fmt: skip
    c = tiny_model.components
    prepared = engine.prepare(c, turn2)
    assert prepared.error is None and [m.kind for m in prepared.media] == ["image", "audio"] and len(prepared.runs) == 2
    without = Request.of_parts("t", "d/2", ["And this sound?", tone])
    from s3eval.types import LikelihoodRequest

    with_h, without_h = tiny_model.loglikelihood([LikelihoodRequest(turn2, "a tone"), LikelihoodRequest(without, "a tone")])
    assert with_h.error is None and without_h.error is None and with_h.logprob != pytest.approx(without_h.logprob)
    # A batch mixing turns with and without history answers each as alone (left padding, masks).
    together = tiny_model.generate([turn2, turn1, without])
    alone = [tiny_model.generate([r])[0] for r in (turn2, turn1, without)]
    assert [r.text for r in together] == [r.text for r in alone]


def test_rescore_and_compare_dialog_runs_without_a_model(tmp_path):
    from s3eval.compare import compare_runs, load_run
    from s3eval.rescore import rescore_path

    name = define(tmp_path)
    paris, _ = go(tmp_path, name, model="constant", model_args={"answer": "Paris"})
    recorded, _ = go(tmp_path, name)
    [again] = rescore_path(paris.run_dir)
    assert again.result.to_dict()["headline"] == paris.results["tasks"][name]["headline"]
    rows, flips = compare_runs([load_run(paris.run_dir), load_run(recorded.run_dir)])
    overall = next(r for r in rows if r["group_kind"] == "overall")
    assert overall["test"] == "sign-flip" and overall["n"] == 4  # graded scores: METEOR halves
    assert overall["accuracy_a"] == pytest.approx(0.75 / 4) and {f["sample_id"] for f in flips} >= {"d2/1"}
