"""VQA soft accuracy as the official evaluation computes it.

Source: ``GT-Vision-Lab/VQA@c4e6a0e``, ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (the Python 3 version,
used unchanged for VQAv2, TextVQA and OK-VQA). Tables, punctuation list and regular expressions are reproduced
verbatim, quirks included, because published VQA numbers were produced with them:

* the prediction is always normalised (whitespace, punctuation, digits/articles);
* ground-truth answers get only the punctuation step, and only when they are not all identical;
* whether a punctuation character is deleted or replaced by a space is decided on the *input* string;
* the period regex's look-behind is mistyped (``(?!<=\\d)``), so every period not followed by a digit goes;
* ``periodStrip.sub("", outText, re.UNICODE)`` passes ``re.UNICODE`` (32) as the *count*: at most 32 periods are
  removed;
* the contractions table holds capitalised keys (``Im``, ``Ive``, ``Id've``) that can never match after
  lower-casing, and ``somebody'd`` maps to ``somebodyd``.

Deviations, all outside what the official data exercises:

* ground-truth answers also get newline/tab -> space and strip (the official code leaves them as stored; the
  VQA annotations are already trimmed, so official scores are unchanged);
* leave-one-out is by position; the official code drops the answer dicts unequal to the current one, which is
  the same thing because every dict carries a distinct ``answer_id``;
* a single answer scores 1.0 if it equals the normalised prediction, else 0.0 (the official leave-one-out
  would give 0.0 always, since no other answer remains);
* the per-item score is returned in [0, 1], unrounded; the official report is 100 x mean, rounded to 2 places.
"""

from __future__ import annotations

import re
from typing import Final, Sequence

from . import require_references

VERSION = "1.0.0"

CONTRACTIONS: Final[dict[str, str]] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}
MANUAL_MAP: Final[dict[str, str]] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
ARTICLES: Final[frozenset[str]] = frozenset({"a", "an", "the"})
# Order matters: replacements happen one character at a time in this order.
PUNCT: Final[tuple[str, ...]] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)

# Kept verbatim, typo included: "(?!<=\d)" is a look-ahead for the text "<=digit", which never follows a
# period, so the pattern behaves as r"\.(?!\d)".
_PERIOD_STRIP: Final = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP: Final = re.compile(r"(\d)(\,)(\d)")
# The official call passes re.UNICODE positionally into sub()'s count slot.
_PERIOD_STRIP_COUNT: Final[int] = int(re.UNICODE)  # == 32


def _clean_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation``."""
    out = text
    # Both tests read the original input, not the partly rewritten output.
    digit_comma_digit = _COMMA_STRIP.search(text) is not None
    for p in PUNCT:
        if (p + " " in text or " " + p in text) or digit_comma_digit:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, number words -> digits, drop articles, contractions."""
    words = []
    for word in text.lower().split():
        word = MANUAL_MAP.get(word, word)
        if word not in ARTICLES:
            words.append(word)
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


def normalize_prediction(text: str) -> str:
    """Everything the official evaluation applies to a predicted answer."""
    return process_digit_article(process_punctuation(_clean_whitespace(text)))


def soft_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Leave-one-out soft accuracy of one prediction against its human answers, in [0, 1]."""
    require_references(answers, "soft_accuracy")
    pred = normalize_prediction(prediction)
    gts = [_clean_whitespace(a) for a in answers]
    if len(set(gts)) > 1:
        gts = [process_punctuation(a) for a in gts]
    if len(gts) == 1:
        return 1.0 if gts[0] == pred else 0.0
    matches = sum(1 for a in gts if a == pred)
    # Same float operations, in the same order, as the official loop, so results agree bit for bit.
    accs = [min(1, float(matches - (a == pred)) / 3) for a in gts]
    return float(sum(accs)) / len(accs)
