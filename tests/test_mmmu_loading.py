"""MMMU loading by each path: local snapshot, the datasets cache offline, and the errors for bad input."""

import json

import pytest

from s3eval.task import TaskError, TaskOptions
from s3eval.task_registry import build_task
from tasks.mmmu.answer_keys import load_official_key

from mmmu_snapshot import row, write_hub_cache, write_snapshot


def mmmu(name="mmmu_val", data=None, **args):
    return build_task(name, TaskOptions(data=str(data) if data else None, args=args))


def test_shared_mini_snapshot_loads_all_90(mmmu_mini):
    samples = mmmu(data=mmmu_mini).samples()
    assert len(samples) == 90 and all(s.error is None for s in samples)
    assert sum(s.answer_type == "choice" for s in samples) == 84
    lists = {s.id: s.gold for s in samples if isinstance(s.gold, tuple)}
    assert lists == {
        "validation_Chemistry_30": ("$MgS$", "MgS"),
        "validation_Geography_4": ("Tampa", "Florida"),
        "validation_Math_15": ("24/7", "3.429"),
    }
    # Official order: subjects alphabetically, rows in file order.
    assert samples[0].id == "validation_Accounting_3" and samples[-1].id == "validation_Sociology_30"


def test_shared_mini_golds_equal_the_official_key(mmmu_mini, official):
    key = load_official_key(official / "answer_dict_val.json")
    for sample in mmmu(data=mmmu_mini).samples():
        assert key[sample.id][1] == sample.gold, sample.id


def test_shared_mini_requests(mmmu_mini):
    task = mmmu("mmmu_val_all_images", data=mmmu_mini, subjects="Music")
    samples = {s.id: s for s in task.samples()}
    request = task.build_request(samples["validation_Music_1"])
    assert [m.name for m in request.media] == ["image_1", "image_2", "image_3", "image_4", "image_5"]
    assert request.prompt == (
        "Express the note value of <image 1> with three dotted notes\n(A) <image 2>\n(B) <image 3>\n"
        "(C) <image 4>\n(D) <image 5>\n\nAnswer with the option's letter from the given choices directly."
    )
    first = mmmu("mmmu_val", data=mmmu_mini, subjects="Music")
    assert [m.name for m in first.build_request(samples["validation_Music_1"]).media] == ["image_1"]


def test_pharmacy_4_unreferenced_image_is_left_out(mmmu_mini):
    task = mmmu("mmmu_val_all_images", data=mmmu_mini, subjects="Pharmacy")
    sample = next(s for s in task.samples() if s.id == "validation_Pharmacy_4")
    assert len(sample.media) == 2
    assert [m.name for m in task.build_request(sample).media] == ["image_1"]


def test_datasets_cache_offline(tmp_path, mmmu_mini):
    cache = write_hub_cache(mmmu_mini, tmp_path / "cache", ["Art", "Math"])
    task = mmmu(data="MMMU/MMMU", subjects="Art,Math", offline="true", cache_dir=str(cache))
    ids = [s.id for s in task.samples()]
    assert ids == ["validation_Art_10", "validation_Art_25", "validation_Art_29",
                   "validation_Math_1", "validation_Math_15", "validation_Math_25"]  # fmt: skip
    assert task.settings()["data_source"] == "hub MMMU/MMMU (offline: datasets cache)"


def test_offline_cache_miss_is_a_clear_error(tmp_path):
    task = mmmu(data="MMMU/MMMU", subjects="Art", offline="true", cache_dir=str(tmp_path))
    with pytest.raises(TaskError, match=r"cannot load MMMU/MMMU config 'Art' split 'validation' \(is it in the datasets cache"):
        task.samples()


def test_built_snapshot_with_bad_rows(tmp_path):
    root = write_snapshot(tmp_path / "snap", [
        row("validation_Art_1"),
        row("validation_Art_2", options="['a', 'b'"),
        row("validation_Art_3", question="<image 1> vs <image 2>?"),  # image_2 missing
        row("validation_Art_4", answer="Z"),
    ])  # fmt: skip
    task = mmmu("mmmu_val_all_images", data=root, subjects="Art")
    samples = task.samples()
    assert [s.error is None for s in samples] == [True, False, True, False]
    with pytest.raises(TaskError, match=r"field 'image_2': image mode 'referenced' needs <image 2>"):
        task.build_request(samples[2])
    # The official first-image mode needs only image_1.
    assert mmmu("mmmu_val", data=root, subjects="Art").build_request(samples[2]).media[0].name == "image_1"


def test_snapshot_errors(tmp_path):
    with pytest.raises(TaskError, match="no such folder"):
        mmmu(data=tmp_path / "nope").samples()
    with pytest.raises(TaskError, match=r"has no folder 'Art'"):
        mmmu(data=tmp_path, subjects="Art").samples()
    write_snapshot(tmp_path / "s", [row("validation_Art_1")])
    with pytest.raises(TaskError, match=r"has no dev-\*\.parquet file"):
        mmmu("mmmu_dev", data=tmp_path / "s", subjects="Art").samples()


def test_subject_and_discipline_selection():
    assert mmmu(subjects="Science,Art").subjects == ("Art", "Biology", "Chemistry", "Geography", "Math", "Physics")
    with pytest.raises(TaskError, match="unknown MMMU subject or discipline 'Chemestry': did you mean 'Chemistry'"):
        mmmu(subjects="Chemestry")


def test_unknown_task_argument_and_values():
    with pytest.raises(TaskError, match="has no argument 'subject': did you mean 'subjects'"):
        mmmu(subject="Art")
    with pytest.raises(TaskError, match="unknown MMMU answer_key 'old'"):
        mmmu(answer_key="old")
    with pytest.raises(TaskError, match="image_mode must be one of first, referenced"):
        mmmu(image_mode="all")


def test_key_file_errors(tmp_path):
    bad = tmp_path / "k.json"
    bad.write_text(json.dumps({"validation_Art_1": {"ground_truth": "A"}}))
    with pytest.raises(TaskError, match="entry 'validation_Art_1' lacks question_type/ground_truth"):
        load_official_key(bad)


def test_an_unreachable_hub_is_reported_at_once_with_the_offline_hint(monkeypatch):
    from tasks.mmmu import loading

    monkeypatch.setattr(loading, "_hub_host_reachable", lambda host, port: "Name or service not known")
    with pytest.raises(TaskError) as caught:
        loading.load_hub_subject("MMMU/MMMU", "Art", "validation", None, offline=False)
    assert str(caught.value) == (
        "cannot reach the Hugging Face hub for 'MMMU/MMMU' (huggingface.co: Name or service not known); offline, "
        "pass --data DIR (a local snapshot, e.g. ../shared/mmmu_mini) or --task-arg offline=true to read the "
        "datasets cache")
