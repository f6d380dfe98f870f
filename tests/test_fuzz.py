"""Fuzz tests: the answer parsers and the dataset row loader never raise and are deterministic."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3eval import answer_parser as ap
from tasks.mmmu.rows import row_to_sample

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
    ["(A)", " B ", "the answer is 3.14", "1,234", "inf", "nan", "so =", "\n", "", "1e400", "-0", "１２"]
)


@SETTINGS
@given(response=text, n=st.integers(1, 9), options=st.lists(text, min_size=9, max_size=9), seed=st.integers(0, 99))
def test_choice_parser_total_and_deterministic(response, n, options, seed):
    letters = [chr(65 + i) for i in range(n)]
    texts = dict(zip(letters, options))
    first = ap.parse_choice(response, letters, texts, random.Random(seed))
    second = ap.parse_choice(response, letters, texts, random.Random(seed))
    assert first == second and first.answer in letters


@SETTINGS
@given(response=text, gold=text | st.lists(text, min_size=1, max_size=3))
def test_open_parser_total_and_deterministic(response, gold):
    parsed = ap.parse_open(response)
    assert parsed == ap.parse_open(response) or any(v != v for v in parsed if isinstance(v, float))  # nan != nan
    assert isinstance(ap.score_open(gold, parsed), bool)


value = st.none() | text | st.integers() | st.lists(text, max_size=3) | st.binary(max_size=20)
row_strategy = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["validation_Art_1", "dev_Math_2", "test_Sociology_3", "x", "validation_Nope_1"]) | text,
        "question": value,
        "options": st.sampled_from(["['a', 'b']", "[]", "['a'", "[1]", "None", "()"]) | value,
        "answer": st.sampled_from(["A", "B", "Z", "?", "['x', 'y']", ""]) | value,
        "question_type": st.sampled_from(["multiple-choice", "open", "short-answer"]) | value,
        "image_1": st.none() | st.fixed_dictionaries({"bytes": st.binary(max_size=10), "path": text}),
    }
)


@SETTINGS
@given(row=row_strategy, version=st.sampled_from(["current", "pre-2023-12-14", "dataset"]))
def test_row_loader_never_raises(row, version):
    sample = row_to_sample(row, version)
    assert sample == row_to_sample(row, version)
    assert sample.error is None or sample.error.startswith(str(row.get("id") or "<row without id>"))
