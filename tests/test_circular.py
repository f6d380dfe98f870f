"""Circular evaluation: reading a rotation's answer as VLMEvalKit's exact matching does (``read_choice``), which
questions are not rotated (``keeps_order``), and the rotations themselves.

Expected values are derived by hand from VLMEvalKit@e8e78f05 (``vlmeval/utils/matching_util.py``:
``can_infer``; ``vlmeval/tools.py``: ``CIRCULAR``/``abnormal_entry``). A differential test compares with an
oracle written here that follows the structure of those functions step by step, on seeded generated inputs."""

import random
import re
import string
from collections import Counter, deque

import pytest

from s3eval.metrics import circular
from s3eval.metrics.circular import keeps_order, read_choice, rotated_index, rotations

C4 = ["red", "blue", "green", "yellow"]
C5 = ["red", "blue", "green", "yellow", "black"]
C3 = ["red", "blue", "green"]
YN = ["yes", "no"]

# (response, option texts, expected letter or None, expected rule, why)
READ_CASES = [
    ("B", C4, "B", "letter", "a lone letter"),
    ("(B)", C4, "B", "letter", "parentheses split"),
    ("B.", C4, "B", "letter", "a period splits"),
    ("B)", C4, "B", "letter", "a closing parenthesis splits"),
    ("**B**", C4, "B", "letter", "asterisks split"),
    ("[B]", C4, "B", "letter", "brackets split"),
    ("{C}", C4, "C", "letter", "braces split"),
    ("#D", C4, "D", "letter", "a hash splits"),
    ("B!", C4, "B", "letter", "an exclamation mark splits"),
    ("B;", C4, "B", "letter", "a semicolon splits"),
    ("B. red", C4, "B", "letter", "letter then option text: the letter wins"),
    ("(B) blue", C4, "B", "letter", "letter in parentheses then text"),
    ("B\nred", C4, "B", "letter", "newlines are whitespace"),
    ("Answer: B", C4, "B", "letter", "a colon splits"),
    ("**Answer:** B", C4, "B", "letter", "markdown answer label"),
    ("The answer is (B).", C4, "B", "letter", "letter among the last four tokens"),
    ("Option B is correct", C4, "B", "letter", "letter inside a short sentence"),
    ("I would choose option B for this image", C4, "B", "letter", "first at token 5 of 8: the earliest allowed"),
    ("B B B", C4, "B", "letter", "repeats of one letter count once"),
    ("B Z", C4, "B", "letter", "Z matters only without an option letter"),
    ("A", C4, "A", "letter", "letter A"),
    ("A red car.", C4, "A", "letter", "quirk: the article A reads as letter A"),
    ("E", C5, "E", "letter", "a fifth option"),
    ("The answer is B", YN, "B", "letter", "two options"),
    ("b", C4, None, "unreadable", "lower-case letters are no token match"),
    ("B?", C4, None, "unreadable", "a question mark does not split"),
    ("'B'", C4, None, "unreadable", "quotes do not split"),
    ("B-", C4, None, "unreadable", "a hyphen does not split"),
    ("<B>", C4, None, "unreadable", "angle brackets do not split"),
    ("B/C", C4, None, "unreadable", "a slash does not split"),
    ("", C4, None, "unreadable", "empty response"),
    ("The answer is E", C4, None, "unreadable", "E is no option of a four-option question"),
    ("The answer is D", C3, None, "unreadable", "D is no option of a three-option question"),
    ("The answer is e", C5, None, "unreadable", "quirk: 'answer is' only knows A-D"),
    ("cannot determine the answer", C4, None, "unreadable", "refusal phrases are case-sensitive"),
    ("I think the colour of the car in the picture is red", C4, None, "unreadable", "too long for option text"),
    ("A or B", C4, None, "several_letters", "two letters"),
    ("B, not C", C4, None, "several_letters", "two letters, punctuation split"),
    ("A B C D", C4, None, "several_letters", "all letters"),
    ("I would choose option B for this one image", C4, None, "early_letter", "first at token 5 of 9: too early"),
    ("A cat is sitting on the mat next to a dog", C4, None, "early_letter", "the article A, too early"),
    ("The answer is B, not C", C4, "B", "answer_is", "several letters, then 'answer is'"),
    ("The answer is B because the car is blue", C4, "B", "answer_is", "letter too early, then 'answer is'"),
    ("the answer is b", C4, "B", "answer_is", "'answer is' ignores case"),
    ("ANSWER IS c", C4, "C", "answer_is", "upper-case phrase, lower-case letter"),
    ("answer is\n**d**", C4, "D", "answer_is", "whitespace and asterisks before the letter"),
    ("The correct answer is **C**, because A is wrong and D too", C4, "C", "answer_is", "bold letter"),
    ("The answer is blue", ["red", "green", "blue", "yellow"], "B", "answer_is", "quirk: no word boundary"),
    ("The answer is a cat", ["dog", "cat", "bird"], "A", "answer_is", "quirk: the article a reads as A"),
    ("The answer is B. Or the answer is C", C4, "B", "answer_is", "several letters: the first 'answer is' wins"),
    ("The answer is not B; the answer is C, A", C4, "C", "answer_is", "'answer is not' is skipped"),
    ("red", C4, "A", "option_text", "the option text alone"),
    ("Red", C4, "A", "option_text", "option text ignores case"),
    ("It is green.", C4, "C", "option_text", "option text inside a short sentence"),
    ("B. The car on the left is red", C4, "A", "option_text", "quirk: letter too early, text decides"),
    ("Nope", YN, "B", "option_text", "quirk: substring, 'no' is in 'nope'"),
    ("cat", ["", "dog"], "A", "option_text", "quirk: an empty option text occurs everywhere"),
    ("Failed to obtain answer via API: red", C4, "A", "option_text", "API failure: text matching only"),
    ("red or blue", C4, None, "several_texts", "two option texts"),
    ("bored", ["red", "bored", "blue"], None, "several_texts", "quirk: 'red' is inside 'bored'"),
    ("dog", ["", "dog"], None, "several_texts", "the empty option and the real one"),
    ("Z", C4, None, "z_letter", "VLMEvalKit's invalid letter"),
    ("Z.", C4, None, "z_letter", "Z with a period"),
    ("The answer is Z", C4, None, "z_letter", "Z as the answer"),
    ("The answer is b. Z", C4, None, "z_letter", "Z is checked before 'answer is'"),
    ("Sorry, I can't help with images of people yet.", C4, None, "refusal", "refusal phrase"),
    ("Cannot determine the answer. B", C4, None, "refusal", "a refusal phrase outranks a letter"),
    ("I'm sorry, but without the image provided I cannot say. red", C4, None, "refusal", "refusal outranks text"),
    ("Failed to obtain answer via API. B", C4, None, "api_failure", "API failure: letters are not read"),
    ("Failed to obtain answer via API. Cannot determine the answer", C4, None, "api_failure", "before refusals"),
]  # fmt: skip


@pytest.mark.parametrize("response, choices, letter, rule, why", READ_CASES)
def test_read_choice_cases(response, choices, letter, rule, why):
    assert read_choice(response, choices) == (letter, rule)
    assert oracle_letter(response, choices) == letter
    assert rule in (circular.READ_RULES if letter else circular.UNREAD_RULES)


def test_read_choice_every_rule_is_pinned_and_limits():
    assert len(READ_CASES) >= 40
    assert {rule for *_, rule, _ in READ_CASES} == set(circular.READ_RULES + circular.UNREAD_RULES)
    assert read_choice("B", ("red", "blue")) == ("B", "letter")  # any sequence of option texts
    assert read_choice("3", [1, 2, 3]) == ("C", "option_text")  # non-string options are read through str
    with pytest.raises(ValueError):
        read_choice("A", ["x"] * 27)


# (option texts, answer, expected keeps_order, why)
KEEP_CASES = [
    (C4, None, False, "plain options rotate"),
    (C4, "B", False, "a valid answer"),
    (["Both A and B", "A", "B", "C"], None, True, "an option naming two letters"),
    (["A or B", "cat", "dog"], None, True, "'A or B'"),
    (["cat", "dog", "A and B and C"], None, True, "any option may name them"),
    (["A1 and B2", "cat", "dog"], None, True, "digits become spaces"),
    (["A's and B's", "cat", "dog"], None, True, "apostrophes become spaces"),
    (["vitamin B and vitamin C", "iron", "zinc"], None, True, "quirk: any two letters of the question"),
    (["vitamin B and vitamin D", "iron", "zinc"], None, False, "D is no letter of a three-option question"),
    (["E and F", "cat", "dog", "cow"], None, False, "letters beyond the options do not count"),
    (["a and b", "cat", "dog"], None, False, "lower case does not count"),
    (["None of the above", "cat", "dog", "bird"], None, False, "'None of the above' is rotated"),
    (["All of the above", "cat", "dog", "bird"], None, False, "'All of the above' is rotated"),
    (["Only A", "cat", "dog"], None, False, "one letter is not enough"),
    (["A dog and a cat", "two cats", "B"], None, True, "a bare capital letter as an option"),
    (["A dog and a cat", "two cats", "a bird"], None, False, "the article A alone"),
    (["B-cell and T-cell", "neuron", "red cell"], None, False, "B only: T is no letter here"),
    (["Ça et B", "x y", "z w"], None, False, "accented letters become spaces, one letter left"),
    (["X", "Y"], None, True, "quirk: any capital letter as an option, even not a label"),
    (["AB", "cd"], None, True, "quirk: a run of the alphabet"),
    (["XYZ", "cd"], None, True, "quirk: a run of the alphabet"),
    (["BA", "cd"], None, False, "not a run of the alphabet"),
    (["A AB", "cat", "dog"], None, False, "'AB' is no letter"),
    (["A ", "cd"], None, False, "with a space it is no substring of the alphabet"),
    (["", "cd"], None, True, "quirk: the empty text is a substring of the alphabet"),
    (["1", "2"], None, False, "digits"),
    ([1, 2], None, False, "non-string options are read through str"),
    (["x"], None, True, "a single option"),
    ([], None, True, "no options"),
    (["red", "blue"], "C", True, "the answer is not an option"),
    (["red", "blue"], "AB", True, "the answer is not one letter"),
    (["red", "blue"], "", True, "an empty answer"),
]  # fmt: skip


@pytest.mark.parametrize("choices, answer, expected, why", KEEP_CASES)
def test_keeps_order_cases(choices, answer, expected, why):
    assert keeps_order(choices, answer=answer) is expected
    if len(choices) >= 2:
        assert keeps_order(choices) is oracle_abnormal(choices)


def test_rotations_agree_with_vlmevalkit_circularisation():
    # VLMEvalKit rotates labels with deque.rotate(1); rotation i maps old label s to new label t and copies
    # column s into column t; the answer label is mapped the same way.
    for n in range(2, 7):
        labels = string.ascii_uppercase[:n]
        options = [f"opt{i}" for i in range(n)]
        dq, rots = deque(labels), [list(labels)]
        for _ in range(n - 1):
            dq.rotate(1)
            rots.append(list(dq))
        for k, rot in enumerate(rots):
            c_map = dict(zip(labels, rot))
            shown = {c_map[s]: options[i] for i, s in enumerate(labels)}
            assert [shown[ch] for ch in labels] == rotations(options)[k]
            for i, s in enumerate(labels):
                assert labels.index(c_map[s]) == rotated_index(i, n, k)
    assert circular.VERSION == "2.0.0"


# ---- oracle: VLMEvalKit's can_infer (exact matching), step by step as written there ----

ORACLE_REJECT = ["Sorry, I can't help with images of people yet.", "I can't process this file.",
                 "I'm sorry, but without the image provided", "Cannot determine the answer"]  # fmt: skip
ORACLE_VERBOSE = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def oracle_can_infer_option(answer, choices):
    if "Failed to obtain answer via API" in answer:
        return False
    for err in ORACLE_REJECT:
        if err in answer:
            return "Z"

    def count_choice(splits, choices, prefix="", suffix=""):
        cnt = 0
        for c in choices:
            if prefix + c + suffix in splits:
                cnt += 1
        return cnt

    answer_mod = answer
    for c in ".()[],:;!*#{}":
        answer_mod = answer_mod.replace(c, " ")
    splits = [x.strip() for x in answer_mod.split()]
    count = count_choice(splits, choices)
    if count == 1:
        for ch in choices:
            if ch in splits and splits.index(ch) > (len(splits) - 5):
                return ch
    elif count == 0 and count_choice(splits, {"Z", ""}) == 1:
        return "Z"
    match = ORACLE_VERBOSE.search(answer or "")
    if match and match.group(1).upper() in choices:
        return match.group(1).upper()
    return False


def oracle_can_infer_text(answer, choices):
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return False
    for k in choices:
        choices[k] = str(choices[k]).lower()
    cands = [k for k in choices if choices[k] in answer]
    return cands[0] if len(cands) == 1 else False


def oracle_can_infer(answer, choices):
    answer = str(answer)
    copt = oracle_can_infer_option(answer, choices)
    return copt if copt else oracle_can_infer_text(answer, choices)


def oracle_letter(response, texts):
    """The letter VLMEvalKit's exact matching scores: its 'Z' (invalid) and False (no match) are no letter."""
    choices = {string.ascii_uppercase[i]: t for i, t in enumerate(texts)}
    got = oracle_can_infer(response, choices)
    return got if got and got in choices else None


def oracle_abnormal(texts):
    """VLMEvalKit's abnormal_entry (option part only)."""
    choices = {string.ascii_uppercase[i]: str(t) for i, t in enumerate(texts)}

    def proc_str(s):
        for ch in [x for x in set(s) if x not in string.ascii_letters and x != " "]:
            s = s.replace(ch, " ")
        return s

    has_label = False
    for k in choices:
        hit_words = {x for x in proc_str(choices[k]).split() if x in choices}
        if len(hit_words) > 1:
            return True
        if choices[k] in string.ascii_uppercase:
            has_label = True
    return has_label


# ---- seeded generator of responses and option sets that exercise every branch ----

WORDS = ["red", "blue", "green", "cat", "dog", "a", "the", "car", "is", "it", "bored", "no", "nope", "yes",
         "left", "image", "because", "not", "option", "choose", "answer", "correct", "Answer", "ANSWER",
         "I"]  # fmt: skip
OPTION_WORDS = ["red", "blue", "green", "cat", "dog", "bird", "no", "yes", "bored", "A", "B", "and", "or", "both",
                "vitamin C", "None of the above", "", "Red car", "1", "x", "AB", "Ça"]  # fmt: skip
DRESS = ["{}", "({})", "{}.", "{})", "**{}**", "[{}]", "{{{}}}", "#{}", "{}!", "{};", "{}:", "{},", "{}?", "'{}'",
         "<{}>", "{}-", "{}/C", "Answer: {}", "The answer is {}", "the answer is {}", "answer is **{}**",
         "The correct answer is {}.", "answer is\n{}", "answer  is {}", "Option {} is correct"]  # fmt: skip
SPECIAL = ORACLE_REJECT + ["Failed to obtain answer via API", "cannot determine the answer", "Z", "Z."]


def generate_options(rng):
    n = rng.randint(2, 6)
    sizes = [rng.choice([1, 1, 1, 2, 3]) for _ in range(n)]
    return [" ".join(rng.choice(OPTION_WORDS) for _ in range(size)).strip() for size in sizes]


def generate_response(rng, options):
    parts = []
    for _ in range(rng.choice([1, 1, 2, 3, 4, 6, 9])):
        kind = rng.random()
        if kind < 0.35:
            letter = rng.choice("ABCDEFZ" + "abcde" + "ABCD")
            parts.append(rng.choice(DRESS).format(letter))
        elif kind < 0.55:
            parts.append(rng.choice(options) if options else "")
        elif kind < 0.9:
            parts.append(rng.choice(WORDS))
        elif kind < 0.95:
            parts.append(rng.choice(SPECIAL))
        else:
            said = rng.choice(["The answer is ", "the correct answer is ", "answer is **"])
            parts.append(said + rng.choice(["blue", "a cat", "dog", "bright", "c", "D.", "bored", "Cannot"]))
    text = rng.choice([" ", " ", ". ", "\n", ", "]).join(parts)
    return text.upper() if rng.random() < 0.03 else text


def test_read_choice_agrees_with_the_vlmevalkit_oracle_on_generated_responses():
    rng = random.Random(20260818)
    rules: Counter = Counter()
    for _ in range(5000):
        options = generate_options(rng)
        response = generate_response(rng, options)
        letter, rule = read_choice(response, options)
        expected = oracle_letter(response, options)
        assert letter == expected, (response, options, letter, rule, expected)
        assert rule in (circular.READ_RULES if letter else circular.UNREAD_RULES)
        rules[rule] += 1
    # The generator reaches every rule often enough for the agreement to mean something.
    assert set(rules) == set(circular.READ_RULES + circular.UNREAD_RULES), rules
    assert min(rules.values()) >= 20, rules


def test_keeps_order_agrees_with_the_vlmevalkit_oracle_on_generated_options():
    rng = random.Random(12)
    seen = Counter()
    for _ in range(3000):
        options = generate_options(rng)
        assert keeps_order(options) is oracle_abnormal(options), options
        seen[keeps_order(options)] += 1
    assert min(seen[True], seen[False]) >= 300, seen
