"""Circular evaluation of multiple-choice questions (MMBench's CircularEval): an N-option question is asked
N times with its options rotated, and counts as right only if every rotation is answered right.

Reading an answer (``read_choice``) and deciding which questions are rotated (``keeps_order``) follow
VLMEvalKit, the MMBench authors' evaluation code, at
``open-compass/VLMEvalKit@e8e78f05f3080fe28154f2130321f17951c3be94`` (2026-08-18):

* ``vlmeval/utils/matching_util.py`` (blob ``2397841f``; last changed in ``2cf2a36``, the "answer is X" rule added
  in ``a67ace5``): ``can_infer``, ``can_infer_option``, ``can_infer_text``;
* ``vlmeval/dataset/utils/multiple_choice.py`` (blob ``67212094``): ``build_choices``, ``extract_answer_from_item``,
  ``prefetch_circular_group``, ``eval_circular_group``, ``mcq_circular_eval`` (the ``exact_matching`` policy);
* ``vlmeval/tools.py`` (blob ``a857a900``): ``CIRCULAR`` and its ``abnormal_entry`` (which questions are rotated).

This is the project's own code written from reading those functions, not a copy.
"""

from __future__ import annotations

import re
import string
from typing import Final, Iterable, Optional, Sequence, TypeVar

VERSION = "2.0.0"
T = TypeVar("T")

# Rule names returned by ``read_choice``; stable, recorded per rotation.
READ_RULES: Final = ("letter", "answer_is", "option_text")
UNREAD_RULES: Final = ("refusal", "z_letter", "api_failure", "several_letters", "early_letter", "several_texts",
                       "unreadable")  # fmt: skip

_LETTERS: Final = string.ascii_uppercase
_API_FAILURE: Final = "Failed to obtain answer via API"
_REFUSALS: Final = ("Sorry, I can't help with images of people yet.", "I can't process this file.",
                    "I'm sorry, but without the image provided", "Cannot determine the answer")  # fmt: skip
_TO_SPACE: Final = str.maketrans({c: " " for c in ".()[],:;!*#{}"})
_ANSWER_IS: Final = re.compile(r"answer\s+is\s+\**([a-d])", re.IGNORECASE)


def rotations(options: Sequence[T]) -> list[list[T]]:
    """The N rotations of ``options``; rotation k starts with option k (rotation 0 is the original order)."""
    n = len(options)
    return [[options[(k + i) % n] for i in range(n)] for k in range(n)]


def rotated_index(index: int, n: int, k: int) -> int:
    """Where option ``index`` sits in rotation ``k`` of ``n`` options."""
    return (index - k) % n


def all_correct(units: Iterable[tuple[str, bool]]) -> dict[str, bool]:
    """Per unit (question), whether every one of its (unit, correct) copies is correct; first-seen order."""
    out: dict[str, bool] = {}
    for unit, correct in units:
        out[unit] = out.get(unit, True) and correct
    return out


def _letters(choices: Sequence[object]) -> str:
    if len(choices) > len(_LETTERS):
        raise ValueError(f"at most {len(_LETTERS)} options (A-Z) can be lettered, got {len(choices)}")
    return _LETTERS[: len(choices)]


def read_choice(response: str, choices: Sequence[str]) -> tuple[Optional[str], str]:
    """The option letter that VLMEvalKit's exact matching reads from ``response``, and the rule that read it.

    ``choices`` are the option texts in the order shown; their letters are A, B, C, … . Returns ``(letter, rule)``,
    or ``(None, rule)`` when the answer cannot be read. Steps, in VLMEvalKit's order (``can_infer``):

    1. If the response contains ``Failed to obtain answer via API``, steps 2-5 are skipped (rule if nothing is read:
       ``api_failure``).
    2. A response containing one of four refusal phrases (case-sensitive: "Sorry, I can't help with images of
       people yet.", "I can't process this file.", "I'm sorry, but without the image provided", "Cannot determine
       the answer") is ``(None, "refusal")`` at once (VLMEvalKit answers ``Z``, which is never right).
    3. Tokens: every character of ``.()[],:;!*#{}`` becomes a space, then the text is split on whitespace. Other
       punctuation stays glued to its word: ``B?``, ``'B'``, ``B-``, ``<B>``, ``B/C`` are no letter.
       Exactly one of this question's letters among the tokens (case-sensitive, repeats allowed), first
       occurring among the last four tokens: that letter, rule ``letter``. ``B``, ``(B)``, ``B.``, ``**B**``,
       ``B. red``, ``Answer: B``, ``The answer is (B).`` all read B. Quirks kept: "A" the article is letter A
       ("A red car." reads A); a letter earlier than the last four tokens is not read here ("B. The car on the
       left is red" falls through, ``early_letter`` if nothing else reads it); a letter beyond this question's
       options is no token match ("E" with four options); two or more distinct letters ("A or B",
       "B, not C") are not read here (``several_letters``).
    4. No letter of this question among the tokens but a token ``Z``: ``(None, "z_letter")`` (VLMEvalKit's
       "invalid" answer).
    5. "answer is X" (case-insensitive, anywhere, optional ``**`` before the letter, X one of A-D only and one of
       this question's letters): X, rule ``answer_is``. Quirks kept: no word boundary after X, so "the answer is
       blue" reads B and "the answer is a cat" reads A; the first "answer is <a-d>" wins.
    6. Option text: when the lower-cased response is at most twice as long as all option texts together and
       exactly one option's lower-cased text occurs in it as a substring, that option, rule ``option_text``
       ("red" with options red/blue). Substring, not word: with options "red" and "bored", "bored" names both;
       an empty option text occurs in every response. More than one: ``several_texts``; else ``unreadable``.

    Unread rule precedence: ``api_failure``, then ``several_letters`` / ``early_letter`` from step 3, then
    ``several_texts``, then ``unreadable``.

    Where VLMEvalKit stops: with a judge model it then asks an LLM to map the unread answer to an option (and after
    three failures picks a RANDOM letter). This harness has no judge, so an unread answer is a FAILED rotation,
    which is exactly VLMEvalKit's ``exact_matching`` policy ("Failed in Prefetch, no GPT-based answer matching").

    Not reproduced: VLMEvalKit's check that gives up on "A" as a possible quantifier (option letter "A" among more
    than three tokens) runs only when the environment variable ``VERBOSE`` is non-empty (unset by default), so
    the default behaviour is followed; with all 26 options a refusal would read as option Z in VLMEvalKit, here
    it stays unread.
    """
    letters = _letters(choices)
    texts = [str(c) for c in choices]
    text = str(response)
    miss = "unreadable"
    if _API_FAILURE in text:
        miss = "api_failure"
    else:
        if any(phrase in text for phrase in _REFUSALS):
            return None, "refusal"
        tokens = text.translate(_TO_SPACE).split()
        named = [ch for ch in letters if ch in tokens]
        if len(named) == 1:
            if tokens.index(named[0]) >= len(tokens) - 4:
                return named[0], "letter"
            miss = "early_letter"
        elif len(named) > 1:
            miss = "several_letters"
        elif "Z" in tokens:
            return None, "z_letter"
        said = _ANSWER_IS.search(text)
        if said and said.group(1).upper() in letters:
            return said.group(1).upper(), "answer_is"
    lowered = text.lower()
    if len(lowered) <= 2 * sum(len(t) for t in texts):
        hits = [ch for ch, t in zip(letters, texts) if t.lower() in lowered]
        if len(hits) == 1:
            return hits[0], "option_text"
        if len(hits) > 1 and miss == "unreadable":
            miss = "several_texts"
    return None, miss


def keeps_order(choices: Sequence[str], answer: Optional[str] = None) -> bool:
    """True when the question must NOT be rotated (asked once, in its original order).

    The rule of VLMEvalKit's ``CIRCULAR`` / ``abnormal_entry`` in ``vlmeval/tools.py`` (blob ``a857a900`` at
    ``open-compass/VLMEvalKit@e8e78f05``; the logic dates from ``90a80d29``, "Better Implementation for
    CircularEval"). With this question's letters A, B, … (one per option), True when:

    * some option text names two or more distinct letters of this question: every character that is not an ASCII
      letter or a space (digits, punctuation, accented letters) becomes a space, the text is split on whitespace,
      and the tokens equal to a letter are counted, case-sensitively ("Both A and B", "A or B", "A1 and B2",
      "vitamin B and vitamin C" with three or more options); one letter is not enough ("Only A", "A dog" keep
      rotating), nor are lower-case letters or letters beyond the options ("E and F" with four options);
    * some option text, as given, is a substring of ``ABCDEFGHIJKLMNOPQRSTUVWXYZ``: a bare capital letter
      ("C", and also "X"), a run such as "AB" or "XYZ", or the empty text;
    * fewer than two options (VLMEvalKit sets aside questions without options and refuses a single option);
    * ``answer`` is given and is not exactly one of this question's letters.

    "None of the above", "All of the above" and the like name no letter and ARE rotated, as in VLMEvalKit.
    Option texts that are not strings are read through ``str``.
    """
    letters = _letters(choices)
    if len(letters) < 2 or (answer is not None and (len(answer) != 1 or answer not in letters)):
        return True
    labels = set(letters)
    for choice in choices:
        text = str(choice)
        spaced = "".join(c if c in string.ascii_letters or c == " " else " " for c in text)
        if len({tok for tok in spaced.split() if tok in labels}) > 1 or text in _LETTERS:
            return True
    return False
