"""Rescoring the official MMMU example outputs reproduces the official numbers to the item."""

import json

import pytest

from s3eval.rescore import RescoreError, TaskOverrides, rescore_path
from s3eval.task import TaskError


def rescore(path, key=None, drop_missing=False, **args):
    (rescored,) = rescore_path(path, "mmmu_val", TaskOverrides(args), key, seed=42, drop_missing=drop_missing)
    return rescored


def correct_by_discipline(rescored):
    return {name: g["correct"] for name, g in rescored.result.summary["groups"]["discipline"].items()}


@pytest.mark.parametrize(
    "model,key_version,key_file,overall,hss",
    [
        ("llava1.5_13b", "current", "answer_dict_val.json", 330, 66),
        ("llava1.5_13b", "pre-2023-12-14", "answer_dict_val.json", 328, 64),
        ("llava1.5_13b", "dataset", "answer_key_history/answer_dict_val_bf380a2_pre_2023-12-14.json", 328, 64),
        ("qwen_vl", "current", "answer_dict_val.json", 325, 57),
        ("qwen_vl", "pre-2023-12-14", "answer_dict_val.json", 323, 55),
        ("qwen_vl", "current", "answer_key_history/answer_dict_val_bf380a2_pre_2023-12-14.json", 325, 57),
    ],
)
def test_eval_only_reproduces_official(official, model, key_version, key_file, overall, hss):
    result = rescore(official / "example_outputs" / model / "total_val_output.json", official / key_file,
                     answer_key=key_version)  # fmt: skip
    o = result.result.summary["overall"]
    assert (o["correct"], o["n"], o["n_fallback"], o["n_missing"]) == (overall, 900, 0, 0)
    assert correct_by_discipline(result)["Humanities and Social Science"] == hss


def test_eval_only_per_discipline_llava(official):
    result = rescore(official / "example_outputs/llava1.5_13b/total_val_output.json", official / "answer_dict_val.json")
    assert correct_by_discipline(result) == {
        "Art and Design": 63, "Business": 34, "Science": 44, "Health and Medicine": 58,
        "Humanities and Social Science": 66, "Tech and Engineering": 65,
    }  # fmt: skip
    assert round(result.result.summary["overall"]["accuracy"], 3) == 0.367


def test_second_llava_file(official):
    result = rescore(official / "example_outputs/llava1.5_13b_val.json", official / "answer_dict_val.json")
    assert result.result.summary["overall"]["correct"] == 324


@pytest.mark.parametrize("model,fallbacks,open_correct,overall", [("llava1.5_13b", 2, 2, 330), ("qwen_vl", 48, 6, 325)])
def test_raw_outputs_reproduce_official_predictions(official, model, fallbacks, open_correct, overall):
    folder = official / "example_outputs" / model
    result = rescore(folder, official / "answer_dict_val.json")
    expected = json.loads((folder / "total_val_output.json").read_text())
    choice = [r for r in result.records if r.answer_type == "choice"]
    assert len(choice) == 847
    assert [r.sample_id for r in choice if r.parsed != expected[r.sample_id]] == []
    assert sum(r.fallback for r in choice) == fallbacks
    assert sum(bool(r.correct) for r in result.records if r.answer_type == "open") == open_correct
    assert result.result.summary["overall"]["correct"] == overall
    # Strict accuracy counts every fallback wrong.
    strict = result.result.summary["overall"]["strict_accuracy"] * 900
    assert round(strict) == overall - sum(bool(r.correct) for r in choice if r.fallback)


def test_raw_outputs_golds_from_files_without_key(official):
    result = rescore(official / "example_outputs" / "llava1.5_13b")
    assert result.result.summary["overall"]["n"] == 900


def test_missing_ids_counted_or_dropped(official, tmp_path):
    full = json.loads((official / "example_outputs/llava1.5_13b/total_val_output.json").read_text())
    partial = dict(list(full.items())[:-10])
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(partial))
    kept = rescore(path, official / "answer_dict_val.json")
    assert (kept.result.summary["overall"]["n"], kept.result.summary["overall"]["n_missing"]) == (900, 10)
    dropped = rescore(path, official / "answer_dict_val.json", drop_missing=True)
    assert (dropped.result.summary["overall"]["n"], dropped.result.summary["overall"]["n_missing"]) == (890, 0)
    assert kept.result.summary["overall"]["correct"] == dropped.result.summary["overall"]["correct"]


def test_unknown_ids_are_an_error(official, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"validation_Art_99": "A"}))
    with pytest.raises(TaskError, match=r"1 id\(s\) are not in the answer key, e.g. \['validation_Art_99'\]"):
        rescore(path, official / "answer_dict_val.json")


def test_subject_selection_while_rescoring(official):
    result = rescore(official / "example_outputs/llava1.5_13b/total_val_output.json",
                     official / "answer_dict_val.json", subjects="Literature", answer_key="pre-2023-12-14")  # fmt: skip
    assert result.result.summary["overall"]["n"] == 30


def test_foreign_file_needs_a_task(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    with pytest.raises(RescoreError, match="name the task whose format it is with --task"):
        rescore_path(path)
