"""Question-answering sets: the on-disk format, YAML definitions, prompts, metrics per definition, circular
evaluation, and the adapters for MMBench and MMAU layouts (on the fixtures in ../shared)."""

import json
from pathlib import Path

import pytest

from s3eval import leaderboard
from s3eval.cli import main
from s3eval.config import RunConfig, TaskSpec
from s3eval.runner import run
from s3eval.storage import read_jsonl
from s3eval.task import TaskError
from s3eval.task_registry import build_task, load_definitions
from s3eval.task import TaskOptions

from conftest import SHARED, need
from media_factory import noise_png, tone_wav
from tasks.vqa.prompts import qa_prompt

ROWS = [
    {"id": 1, "question": "What colour?", "image": "images/a.png", "choices": ["red", "blue", "green"], "answer": "A",
     "category": "colour"},
    {"id": 2, "question": "Which shape?", "image": ["images/a.png", "images/b.png"], "choices": ["disc", "square"],
     "answer": "square", "hint": "Look closely.", "category": "shape"},
]  # fmt: skip


def write_set(folder: Path, rows, extra_lines=()) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "audios").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "a.png").write_bytes(noise_png(1))
    (folder / "images" / "b.png").write_bytes(noise_png(2))
    (folder / "audios" / "a.wav").write_bytes(tone_wav(300, 1.0))
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    (folder / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def define(tmp_path, rows=ROWS, extra_lines=(), suffix="", **entry) -> str:
    write_set(tmp_path / "set", rows, extra_lines)
    name = f"qa_{tmp_path.name}{suffix}"
    fields = {"path": "set", "modality": "image", "question_type": "choice", "metric": "choice_letter", **entry}
    yaml_text = f"tasks:\n  - name: {name}\n" + "".join(f"    {k}: {json.dumps(v)}\n" for k, v in fields.items())
    (tmp_path / f"defs{suffix}.yaml").write_text(yaml_text)
    load_definitions(tmp_path / f"defs{suffix}.yaml")
    return name


def go(tmp_path, name, model="constant", **model_args):
    config = RunConfig(model=model, model_args=model_args, tasks=[TaskSpec(name)], output_dir=str(tmp_path / "runs"),
                       leaderboard=str(tmp_path / "lb.csv"))  # fmt: skip
    outcome = run(config, show_progress=False)
    return outcome, list(read_jsonl(outcome.run_dir / f"samples_{name}.jsonl"))


def test_a_set_registered_from_yaml_alone_runs_through_the_cli(tmp_path, capsys):
    write_set(tmp_path / "my_set", ROWS)
    (tmp_path / "mine.yaml").write_text(
        "name: my_cli_set\npath: my_set\nmodality: image\nquestion_type: choice\nmetric: choice_letter\n"
    )
    args = ["--define", str(tmp_path / "mine.yaml")]
    assert main(["tasks", *args]) == 0 and "my_cli_set" in capsys.readouterr().out
    code = main(["run", "--model", "constant", "--model-arg", "answer=B", "--tasks", "my_cli_set", *args,
                 "--output-dir", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "lb.csv"), "--quiet"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "my_cli_set: accuracy 50.0 (1/2)" in out  # B is right for item 2 only
    row = leaderboard.read(tmp_path / "lb.csv").iloc[0]
    assert (row["metric"], row["score"], row["unit"], row["n"], row["ci_method"]) == ("choice_letter", 0.5, "item", 2,
                                                                                      "wilson")
    run_dir = next((tmp_path / "runs").iterdir())
    assert main(["rescore", str(run_dir), *args]) == 0 and "accuracy 50.0 (1/2)" in capsys.readouterr().out


def test_prompts_per_metric():
    assert qa_prompt("Which?", "Look.", ["x", "y"], "choice_letter", "Answer with the letter.") == (
        "Hint: Look.\nWhich?\nA. x\nB. y\nAnswer with the letter."
    )
    assert qa_prompt("Which?", "", ["x", "y"], "token_set", "Say it.") == "Which?\nOptions: x; y\nSay it."
    assert qa_prompt("Which?", "", ["x", "y"], "choice_likelihood", "") == "Which?"
    assert qa_prompt("What?", "", (), "vqa_accuracy", "Answer briefly.") == "What?\nAnswer briefly."


def test_circular_evaluation_rotates_options_and_needs_every_rotation_right(tmp_path):
    name = define(tmp_path, circular=True)
    outcome, records = go(tmp_path, name, answer="A")
    assert [r["sample_id"] for r in records] == ["1@0", "1@1", "1@2", "2@0", "2@1"]
    assert [r["choices"] for r in records[:3]] == [["red", "blue", "green"], ["blue", "green", "red"],
                                                   ["green", "red", "blue"]]  # fmt: skip
    assert [r["gold"] for r in records] == ["A", "C", "B", "B", "A"]
    assert [r["correct"] for r in records] == [True, False, False, False, True]
    headline = outcome.results["tasks"][name]["headline"]
    assert {k: headline[k] for k in ("metric", "score", "kind", "unit", "n_units", "details")} == {
        "metric": "circular_accuracy", "score": 0.0, "kind": "right_wrong", "unit": "question", "n_units": 2,
        "details": {"rotations": 5, "rotation_accuracy": 0.4}}  # fmt: skip
    assert headline["interval"]["method"] == "wilson" and headline["interval"]["low"] == 0.0


@pytest.mark.parametrize("answer,parsed,rule", [
    ("(A)", "A", "letter"),
    ("**A**", "A", "letter"),
    ("red", "A", "option_text"),
    ("I am not sure", None, "unreadable"),
])  # fmt: skip
def test_circular_rotations_are_read_strictly_and_the_rule_recorded(tmp_path, answer, parsed, rule):
    name = define(tmp_path, circular=True)
    outcome, records = go(tmp_path, name, answer=answer)
    first = records[0]
    assert (first["parsed"], first["parse_rule"], first["fallback"], first["metric"]) == (parsed, rule, False,
                                                                                          "circular_choice")
    # An unreadable answer fails its rotation: no random letter can pass it.
    assert outcome.results["tasks"][name]["summary"]["overall"]["n_fallback"] == 0
    if parsed is None:
        assert not any(r["correct"] for r in records)


def test_options_that_name_letters_are_not_rotated(tmp_path):
    rows = [{"id": "1", "question": "Which?", "image": "images/a.png", "choices": ["red", "blue", "Both A and B"],
             "answer": "C"}, {"id": "2", "question": "Which?", "image": "images/a.png", "choices": ["x", "y"], "answer": "A"}]
    name = define(tmp_path, rows=rows, circular=True)
    outcome, records = go(tmp_path, name, answer="C")
    assert [r["sample_id"] for r in records] == ["1@0", "2@0", "2@1"]
    assert outcome.results["tasks"][name]["headline"]["n_units"] == 2


def test_choice_by_likelihood_scores_option_texts_without_generating(tmp_path):
    name = define(tmp_path, metric="choice_likelihood")
    _, records = go(tmp_path, name, answer="square")
    # The constant model makes its own answer the likeliest option: "square" (B) for item 2; item 1 ties → A.
    assert [(r["parsed"], r["correct"], r["response"]) for r in records] == [("A", True, None), ("B", True, None)]
    assert records[1]["candidates"] == ["disc", "square"] and records[1]["candidate_nll"] == [1.0, 0.0]


@pytest.mark.parametrize("metric, answer, rows, expected", [
    ("vqa_accuracy", "Two", [{"id": "q", "question": "How many?", "image": "images/a.png",
                              "answer": ["2", "2", "2", "two", "2", "3", "3", "2", "2", "2"]}], 1.0),
    ("vqa_accuracy", "3", [{"id": "q", "question": "How many?", "image": "images/a.png",
                            "answer": ["2", "2", "2", "2", "2", "3", "3", "2", "2", "2"]}], 0.6),
    ("exact_match", "Yeah!", [{"id": "q", "question": "Is it?", "image": "images/a.png", "answer": "yes"}], 1.0),
    ("meteor", "a red disc", [{"id": "q", "question": "Describe.", "image": "images/a.png", "answer": "a red disc"}],
     1 - 0.5 * (1 / 3) ** 3),
])  # fmt: skip
def test_open_metrics_by_definition(tmp_path, metric, answer, rows, expected):
    name = define(tmp_path, rows=rows, question_type="open", metric=metric)
    _, records = go(tmp_path, name, answer=answer)
    # "Two" → "2": 8 of the 10 answers are "2", so every leave-one-out subset has ≥ 3 matches; "3" matches 2
    # answers: (2 · min(1, 1/3) + 8 · min(1, 2/3)) / 10 = 0.6.
    assert records[0]["score"] == pytest.approx(expected, abs=1e-12)
    assert records[0]["metric"] == {"vqa_accuracy": "vqa_accuracy_2017"}.get(metric, metric)


@pytest.mark.parametrize("line, problem", [
    ("{oops", "not valid JSON"),
    (json.dumps({"id": 3, "question": "Q", "image": "images/none.png", "choices": ["a", "b"], "answer": "A"}),
     "`image` file 'images/none.png' not found"),
    (json.dumps({"id": 3, "question": "Q", "image": "images/a.png", "choices": ["a", "b"], "answer": "C"}),
     "`answer` 'C' is neither an option letter (A, B) nor an option text"),
    (json.dumps({"id": 3, "question": "Q", "audio": "audios/a.wav", "choices": ["a", "b"], "answer": "A"}),
     "the set is image but this item has audio media"),
    (json.dumps({"id": 3, "question": "Q", "image": "images/a.png", "answer": "A"}),
     "the set is choice but this item lacks `choices`"),
    (json.dumps({"id": 3, "question": "Q", "image": "images/a.png", "choices": ["a"], "answer": "A"}),
     "`choices` must have 2 to 26 options"),
    (json.dumps({"id": 1, "question": "Q", "image": "images/a.png", "choices": ["a", "b"], "answer": "A"}),
     "id '1' is used twice"),
    (json.dumps({"id": 3, "question": "Q", "imgae": "images/a.png"}), "unknown field(s) ['imgae']"),
])  # fmt: skip
def test_bad_lines_become_error_records_naming_file_line_and_field(tmp_path, line, problem):
    name = define(tmp_path, extra_lines=[line])
    _, records = go(tmp_path, name)
    assert [r["error"] for r in records[:2]] == [None, None]
    assert records[2]["error_kind"] == "data" and problem in records[2]["error"]
    assert "questions.jsonl" in records[2]["error"] and ("questions.jsonl:3" in records[2]["error"] or "id 3" in records[2]["error"])


@pytest.mark.parametrize("entry, problem", [
    ({"metric": "vqa_acc"}, "`metric` is 'vqa_acc': did you mean 'vqa_accuracy'"),
    ({"metric": "vqa_accuracy"}, "metric 'vqa_accuracy' does not score choice questions; use one of choice_letter"),
    ({"modality": "video"}, "`modality` is 'video'"),
    ({"path": "nowhere"}, "questions file"),
    ({"circular": "yes"}, "`circular` is true or false"),
    ({"colour": 1}, "unknown key(s) ['colour']"),
])  # fmt: skip
def test_bad_definitions_are_refused_with_the_reason(tmp_path, entry, problem):
    with pytest.raises(TaskError, match="defs.yaml: task 1") as info:
        define(tmp_path, **entry)
    assert problem in str(info.value)


def test_mmbench_layout_with_real_images(tmp_path):
    samples = need(SHARED / "vqa_aqa_samples")
    (tmp_path / "mmb.yaml").write_text(
        f"name: mmb_{tmp_path.name}\npath: {samples / 'mmbench_samples.jsonl'}\nlayout: mmbench\nmodality: image\n"
        "question_type: choice\nmetric: choice_letter\ncircular: true\n"
    )
    name = load_definitions(tmp_path / "mmb.yaml")[0]
    task = build_task(name, TaskOptions())
    items = task.samples()
    assert all(s.error is None for s in items)
    first = [s for s in items if s.unit == "1"]
    assert [s.id for s in first] == ["1@0", "1@1", "1@2", "1@3"] and first[0].gold == "D" and first[1].gold == "C"
    assert first[0].metadata["category"] == "Structuralized Imagetext Understanding"
    assert first[0].metadata["subcategory"] == "Logic Reasoning" and Path(first[0].media[0].path).name == "1.jpg"
    assert len({s.unit for s in items}) == 20
    prompt = task.build_request(first[0]).prompt
    assert prompt.startswith("What is correct Python code to generate the content of the image?\nA. for x in range(6):")
    assert prompt.endswith("\nAnswer with the option's letter from the given choices directly.")


def test_mmau_layout_with_token_set_scoring(tmp_path):
    samples = need(SHARED / "vqa_aqa_samples")
    rows = json.loads((samples / "mmau_test_mini_subset60.json").read_text())
    media_root = tmp_path / "audio"  # the audio is not distributed: synthetic stand-ins at the same paths
    for row in rows:
        path = media_root / row["audio_id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tone_wav(200 + len(row["id"]), 0.5))
    (tmp_path / "mmau.yaml").write_text(
        f"name: mmau_{tmp_path.name}\npath: {samples / 'mmau_test_mini_subset60.json'}\nlayout: mmau\nmodality: audio\n"
        f"question_type: choice\nmetric: token_set\nmedia_root: {media_root}\n"
    )
    name = load_definitions(tmp_path / "mmau.yaml")[0]
    replies = {rows[0]["id"]: "It is a man speaking.", rows[1]["id"]: "a woman or a child"}
    (tmp_path / "replies.json").write_text(json.dumps(replies))
    outcome, records = go(tmp_path, name, model="replay", responses=str(tmp_path / "replies.json"))
    assert len(records) == 60 and records[0]["gold"] == "Man" and records[0]["groups"]["category"] == "sound"
    # "man" is the answer's only token and no wrong choice's token occurs; the second names a wrong choice too.
    assert [records[0]["correct"], records[1]["correct"]] == [True, False]
    assert sum(r["error_kind"] == "model" for r in records) == 58  # the replay file has no other answers
    groups = outcome.results["tasks"][name]["summary"]["groups"]["category"]
    assert sorted(groups) == ["music", "sound", "speech"] and groups["sound"]["n"] == 20


def test_vqav2_official_files_with_soft_accuracy(tmp_path):
    images = tmp_path / "val2014"
    images.mkdir()
    (images / "COCO_val2014_000000000042.jpg").write_bytes(noise_png(4))
    questions = {"data_subtype": "val2014", "questions": [
        {"image_id": 42, "question": "How many dogs?", "question_id": 420},
        {"image_id": 42, "question": "Is it sunny?", "question_id": 421}]}
    annotations = {"annotations": [
        {"question_id": 420, "answer_type": "number", "question_type": "how many",
         "answers": [{"answer": a, "answer_id": i} for i, a in enumerate(["2"] * 7 + ["two", "3", "1"])]},
        {"question_id": 421, "answer_type": "yes/no", "question_type": "is it",
         "answers": [{"answer": "yes", "answer_id": i} for i in range(10)]}]}  # fmt: skip
    (tmp_path / "q.json").write_text(json.dumps(questions))
    (tmp_path / "a.json").write_text(json.dumps(annotations))
    (tmp_path / "vqa.yaml").write_text(
        f"name: vqa_{tmp_path.name}\npath: q.json\nannotations: a.json\nlayout: vqav2\nmedia_root: val2014\n"
        "modality: image\nquestion_type: open\nmetric: vqa_accuracy\n"
    )
    name = load_definitions(tmp_path / "vqa.yaml")[0]
    outcome, records = go(tmp_path, name, answer="2")
    # "2" vs 7 × "2", "two", "3", "1" (GT gets the punctuation step only, so "two" stays "two"): an answer "2"
    # sees 6 other matches, the rest see 7: every leave-one-out term is 1 → 1.0. "2" vs ten "yes" → 0.
    assert [r["score"] for r in records] == [1.0, 0.0]
    groups = outcome.results["tasks"][name]["summary"]["groups"]
    assert list(groups["category"]) == ["number", "yes/no"] and list(groups["subcategory"]) == ["how many", "is it"]
    assert records[0]["groups"]["modality"] == "image" and records[0]["metric"] == "vqa_accuracy_2017"


def test_clotho_aqa_csv_groups_annotators_and_keeps_confident_answers(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "rain.wav").write_bytes(tone_wav(100, 1.0))
    (tmp_path / "aqa.csv").write_text(
        "file_name,QuestionText,answer,confidence\n"
        "rain.wav,Is it raining?,yes,yes\nrain.wav,Is it raining?,yes,yes\nrain.wav,Is it raining?,no,maybe\n"
        "rain.wav,What is falling?,water,yes\nrain.wav,What is falling?,rain,yes\nrain.wav,What is falling?,hail,no\n"
    )
    (tmp_path / "aqa.yaml").write_text(
        f"name: aqa_{tmp_path.name}\npath: aqa.csv\nlayout: clotho_aqa\nmedia_root: audio\nmodality: audio\n"
        "question_type: open\nmetric: exact_match\n"
    )
    name = load_definitions(tmp_path / "aqa.yaml")[0]
    _, records = go(tmp_path, name, answer="Rain!")
    assert [(r["sample_id"], r["gold"]) for r in records] == [
        ("rain.wav:1", ["yes", "yes"]), ("rain.wav:2", ["water", "rain"])]
    assert [r["score"] for r in records] == [0.0, 1.0]


def test_rescore_of_a_task_that_cannot_be_rebuilt_uses_what_the_run_recorded(tmp_path, capsys):
    name = define(tmp_path, circular=True)
    outcome, _ = go(tmp_path, name, answer="A")
    gone = outcome.run_dir.parent / "gone"
    gone.mkdir()
    (gone / "samples_gone_set.jsonl").write_text(
        (outcome.run_dir / f"samples_{name}.jsonl").read_text().replace(f'"task": "{name}"', '"task": "gone_set"'))
    results = json.loads((outcome.run_dir / "results.json").read_text())
    results["tasks"] = {"gone_set": results["tasks"][name]}
    (gone / "results.json").write_text(json.dumps(results))
    assert main(["rescore", str(gone)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("gone_set: task not rebuilt (unknown task 'gone_set'")
    assert out[1].startswith("gone_set: accuracy 40.0 (2/5)")
