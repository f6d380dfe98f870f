import pytest

from tasks.mmmu.rows import row_to_sample

from mmmu_snapshot import png, row


def test_good_choice_row():
    sample = row_to_sample(row("validation_Art_Theory_4", answer="B"), "current")
    assert sample.error is None
    assert sample.answer_type == "choice"
    assert sample.choices == ("cat", "dog", "bird", "fish")
    assert sample.gold == "B"
    assert sample.metadata["subject"] == "Art_Theory"
    assert sample.metadata["discipline"] == "Art and Design"
    assert [m.name for m in sample.media] == ["image_1"]


def test_open_row_with_stringified_list_gold():
    r = row("validation_Math_15", options="[]", answer="['24/7', '3.429']", question_type="open")
    sample = row_to_sample(r, "current")
    assert sample.answer_type == "open" and sample.gold == ("24/7", "3.429") and sample.choices == ()


def test_key_versions_pin_the_changed_items():
    r = row("validation_Literature_10", answer="C")
    assert row_to_sample(r, "current").gold == "C"
    assert row_to_sample(r, "pre-2023-12-14").gold == "D"
    assert row_to_sample(row("validation_Literature_10", answer="D"), "dataset").gold == "D"


def test_withheld_test_answers():
    assert row_to_sample(row("test_Art_1", answer="?"), "dataset").gold is None


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"options": "['a', 'b'"}, "validation_Art_1: field 'options': not a Python list literal"),
        ({"options": "__import__('os').system('x')"}, "validation_Art_1: field 'options': not a Python list literal"),
        ({"options": "[1, 2]"}, "validation_Art_1: field 'options': expected a list of strings"),
        ({"options": "[]"}, "validation_Art_1: field 'options': a multiple-choice item needs at least one option"),
        ({"answer": "F"}, "validation_Art_1: field 'answer': 'F' is not an option letter (options A-D)"),
        ({"question": "  "}, "validation_Art_1: field 'question': empty or missing"),
        ({"question_type": "essay"}, "validation_Art_1: field 'question_type': expected 'multiple-choice' or 'open'"),
        ({"id": "validation_Astrology_1"}, "validation_Astrology_1: field 'id': unknown MMMU subject 'Astrology'"),
        ({"id": "Art-1"}, "Art-1: field 'id': id 'Art-1' is not of the form <split>_<Subject>_<n>"),
    ],
)
def test_bad_rows_become_error_samples(overrides, message):
    r = row("validation_Art_1")
    r.update(overrides)
    sample = row_to_sample(r, "current")
    assert sample.error is not None and sample.error.startswith(message)


def test_image_without_bytes_but_with_path(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(png())
    r = row("validation_Art_1", images={})
    r["image_1"] = {"bytes": None, "path": str(image)}
    sample = row_to_sample(r, "current")
    assert sample.media[0].path == str(image) and sample.media[0].read_bytes() == png()
