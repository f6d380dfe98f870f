import pytest

from tasks.mmmu.prompts import image_order, mc_prompt, open_prompt, referenced_images


def test_mc_prompt_is_byte_exact():
    prompt = mc_prompt("<image 1> Baxter Company has … incurred?", ["$6", "$7", "$8", "$9"])
    assert prompt == (
        "<image 1> Baxter Company has … incurred?\n(A) $6\n(B) $7\n(C) $8\n(D) $9\n\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_mc_prompt_two_options_keeps_verbatim_text():
    assert mc_prompt("Q  with  spaces ", ["<image 2>", "x"]) == (
        "Q  with  spaces \n(A) <image 2>\n(B) x\n\nAnswer with the option's letter from the given choices directly."
    )


def test_open_prompt_is_byte_exact():
    assert open_prompt("What is the place described in <image 1>?") == (
        "What is the place described in <image 1>?\nAnswer the question using a single word or phrase."
    )


@pytest.mark.parametrize(
    "question,options,present,mode,expected",
    [
        ("<image 1> q", [], [1], "first", [1]),
        ("<image 2> then <image 1>", [], [1, 2], "first", [1]),
        ("<image 2> then <image 1>", [], [1, 2], "referenced", [2, 1]),  # out of order: text order
        ("<image 1> and again <image 1>", [], [1], "referenced", [1]),  # repeated: once
        ("<image 1> which?", ["<image 3>", "<image 2>"], [1, 2, 3], "referenced", [1, 3, 2]),  # options after
        ("no reference", ["a", "b"], [1, 2, 3], "referenced", [1, 2, 3]),  # none referenced: all, numeric
        ("<image 1> only", [], [1, 2], "referenced", [1]),  # an unreferenced image is left out
    ],
)
def test_image_order(question, options, present, mode, expected):
    assert image_order(mode, question, options, present) == expected


def test_referenced_images_scans_question_then_options():
    assert referenced_images("<image 4>", ["<image 2> or <image 4>", "<image 1>"]) == [4, 2, 1]
