"""VQA soft accuracy exactly as the official ``vqaEval.py`` computes it, in its two released versions.

Source: ``GT-Vision-Lab/VQA``, ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (used unchanged for VQAv2,
TextVQA and OK-VQA). The master branch has held two scoring behaviours; ``soft_accuracy(..., version=...)``
reproduces either one's per-question accuracy bit for bit (same strings compared, same float operations):

``"2017"`` (``VQA_2017``) -- ``3849b1e`` (2017-04-04). The file (blob ``120382b``) is byte-identical on master
  from ``458a8b2`` (2016-10-08) to ``a4f1afd`` (2017-10-02, "updated for v2.0"), master's head until 2021-03-11;
  the unmerged Python 3 pull request ``c4e6a0e`` that s3eval 1.0.0 cited changes only its two ``print`` lines.

  * the prediction: ``\\n`` and ``\\t`` -> space, strip, punctuation step, digit/article step -- always;
  * the answers are compared *as stored*: no whitespace handling, no lower-casing, no digit/article step; only
    the punctuation step, and only when the stored strings are not all identical.

``"2021"`` (``VQA_2021``) -- ``a013f00`` (2021-03-11, "Fixed processing answers bug"), master's head since.

  * answers and prediction: ``\\n`` and ``\\t`` -> space, strip -- always;
  * if the trimmed answers are not all identical, both the answers and the prediction get the punctuation and
    the digit/article steps; otherwise neither does and the comparison is exact, case, punctuation, articles
    and number words included (``Yes``, ``yes.`` or ``the yes`` against ten ``yes`` score 0; ``yes`` scores 1).

The two disagree wherever those rules meet: a prediction that only normalises to a unanimous answer (2017: 1,
2021: 0), a unanimous answer that normalisation would change (ten ``yes.``: the 2017 prediction loses its
final period and misses, 2021 matches ``yes.`` exactly), an answer list that differs only in case, articles
or number words (``2`` and ``two`` are two answers in 2017 and one in 2021), and answers that differ only in
surrounding whitespace (below).

Quirks shared by both versions; tables, punctuation list and regular expressions are reproduced verbatim:

* the punctuation step decides per character whether to delete it (some occurrence touches a space, or the
  string holds digit-comma-digit anywhere) or replace it by a space, always testing the *input* string;
* the period regex's look-behind is mistyped (``(?!<=\\d)``), so every period not followed by a digit goes;
* ``periodStrip.sub("", outText, re.UNICODE)`` passes ``re.UNICODE`` (32) as the *count*: at most 32 periods
  are removed;
* the contractions table holds capitalised keys (``Im``, ``Ive``, ``Id've``) that can never match after
  lower-casing, and ``somebody'd`` maps to ``somebodyd``;
* matching is exact string equality; leave-one-out: each answer is dropped in turn and the prediction scores
  min(1, matches among the others / 3); the item score is the mean of those terms.

Ground-truth whitespace is part of the 2017 behaviour and not harmless: s3eval 1.0.0 trimmed the answers and
claimed that could never lower a score, which is false. Answers ``x-ray`` x4 and `` \\tx-ray`` are not all
identical as stored, so the 2017 code punctuates all five (``x ray`` x4, `` \\tx ray``) and the prediction
``x-ray`` (normalised ``x ray``) matches four of them: 1.0. Trimmed first they are identical, keep their ``-``
and match nothing: 0.0. The 2017 version here therefore leaves the answers exactly as given; the 2021 version
trims them because its official code does (there the same case scores 1.0 by exact match).

Default: ``"2017"`` (``DEFAULT_VERSION``), because

* it is the official repository's code throughout the VQA v2.0 release and the 2017-2020 challenges (master
  from 2016-10 to 2021-03), and the rule of the EvalAI 2017 challenge script
  (``Cloud-CV/VQA-Challenge@35c7703``: prediction always normalised, answers punctuated only when they differ);
* the Python 3 ports of the evaluation loop keep it (the ``c4e6a0e`` pull request; Salesforce LAVIS
  ``lavis/common/vqa_tools/vqa_eval.py``); both official revisions are Python 2 only (``print "..."``), so
  nobody runs ``a013f00`` unmodified under Python 3;
* it is what s3eval has scored as ``vqa_accuracy`` since 1.0.0 (``LEGACY_VERSION``), so earlier records remain
  comparable (up to the whitespace fix above, which only touches answers holding ``\\n``, ``\\t`` or
  surrounding whitespace);
* ``a013f00`` leaves the prediction unnormalised whenever the annotators agree (an author confirms the rule
  is intended: GT-Vision-Lab/VQA#14, for OCR-type answers), which makes capitalisation and trailing
  punctuation of free-form generated answers decide unanimous items. It is offered as ``"2021"`` for anyone who
  must match the current master; lmms-eval matched it exactly in July 2025 (#760) and left it a month later
  (#794) for normalising both sides always, as VLMEvalKit does -- neither official version.

Neither version reproduces the EvalAI server bit for bit: its script re-implements the punctuation step with
other regular expressions (``x,y 1,2``: ``xy 12`` in ``vqaEval.py``, ``x y 12`` there). Offline only val can be
scored anyway (test-dev and test-std need the server).

Deviations (both versions), all outside what the official data exercises:

* a single answer scores 1.0 if it equals the prediction as the version compares them, else 0.0 (the official
  leave-one-out gives 0.0 always, since no other answer remains). VQAv2, TextVQA, OK-VQA and VizWiz store ten
  answers per question, so only s3eval's own single-answer tasks reach this;
* leave-one-out is by position; the official code drops every answer dict equal to the current one, which is
  the same thing because each carries a distinct ``answer_id``;
* the official code rewrites the annotation dicts in place (a second ``evaluate()`` on the same objects would
  process them twice); these functions are pure;
* the per-item score is returned in [0, 1], unrounded; the official report is 100 x mean, rounded to 2 places;
* Python 3 string semantics, as in the Python 3 ports: on ASCII text this equals a Python 2.7 run exactly; on
  non-ASCII text Python 2.7 differs where ``\\d`` meets a non-ASCII digit (its patterns, compiled without
  ``re.UNICODE``, match ASCII digits only: it deletes the period of a full-width ``\uff13.\uff15``, Python 3
  keeps it) and where its Unicode 5.2 tables split (U+180E is whitespace there) or case-map differently.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final, Mapping, Sequence

from . import require_references

VQA_2017: Final = "2017"
VQA_2021: Final = "2021"
COMMITS: Final[Mapping[str, str]] = MappingProxyType({VQA_2017: "3849b1e", VQA_2021: "a013f00"})
# name -> official commit and a one-line description (reads after "as the official vqaEval.py ...").
VERSIONS: Final[Mapping[str, str]] = MappingProxyType({
    VQA_2017: "at GT-Vision-Lab/VQA@3849b1e (master 2016-10 to 2021-03; prediction always normalised, answers "
              "kept as stored and punctuated only when they differ)",
    VQA_2021: "at GT-Vision-Lab/VQA@a013f00 (master since 2021-03-11; answers and prediction trimmed, both "
              "normalised only when the answers differ, else compared exactly)",
})  # fmt: skip
DEFAULT_VERSION: Final = VQA_2017
# The version whose rules plain ``vqa_accuracy`` (implementation 1.0.0, cited as c4e6a0e) followed.
LEGACY_VERSION: Final = VQA_2017

# Implementation of this module; recorded per version as "<implementation>-<name>.<commit>".
_IMPLEMENTATION: Final = "2.0.0"


def implementation_version(version: str = DEFAULT_VERSION) -> str:
    """The string a record stores for the version that scored it, e.g. ``2.0.0-2017.3849b1e``."""
    return f"{_IMPLEMENTATION}-{_checked(version)}.{COMMITS[version]}"


def _checked(version: str) -> str:
    if version not in COMMITS:
        known = ", ".join(f"{name!r} ({commit})" for name, commit in COMMITS.items())
        raise ValueError(f"unknown VQA accuracy version {version!r}; known: {known}")
    return version


VERSION: Final = implementation_version(DEFAULT_VERSION)

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
    """The official ``\\n`` -> space, ``\\t`` -> space, strip (no other whitespace is mapped)."""
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
    """The full normalisation of a predicted answer: what the 2017 version always applies, and what the 2021
    version applies when the answers are not all identical."""
    return process_digit_article(process_punctuation(_clean_whitespace(text)))


def normalize_pair(prediction: str, answers: Sequence[str], version: str = DEFAULT_VERSION) -> tuple[str, list[str]]:
    """The prediction and the answers exactly as the given version compares them."""
    require_references(answers, "soft_accuracy")
    if _checked(version) == VQA_2017:
        pred = normalize_prediction(prediction)
        gts = list(answers)  # as stored: no whitespace step
        if len(set(gts)) > 1:
            gts = [process_punctuation(a) for a in gts]
        return pred, gts
    pred = _clean_whitespace(prediction)
    gts = [_clean_whitespace(a) for a in answers]
    if len(set(gts)) > 1:  # decided on the trimmed answers
        gts = [process_digit_article(process_punctuation(a)) for a in gts]
        pred = process_digit_article(process_punctuation(pred))
    return pred, gts


def soft_accuracy(prediction: str, answers: Sequence[str], version: str = DEFAULT_VERSION) -> float:
    """Leave-one-out soft accuracy of one prediction against its human answers, in [0, 1], as the official
    ``vqaEval.py`` of ``version`` ("2017" or "2021", see ``VERSIONS``) scores it."""
    pred, gts = normalize_pair(prediction, answers, version)
    if len(gts) == 1:  # deviation: the official leave-one-out would score 0.0 always
        return 1.0 if gts[0] == pred else 0.0
    matches = sum(1 for a in gts if a == pred)
    # Same float operations, in the same order, as the official loop, so results agree bit for bit.
    accs = [min(1, float(matches - (a == pred)) / 3) for a in gts]
    return float(sum(accs)) / len(accs)
