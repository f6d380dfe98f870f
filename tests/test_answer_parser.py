"""Table-driven tests of the shared answer parser. Expected values are derived by hand from the official MMMU
rules (see the module docstring of s3eval.answer_parser); each row names the quirk it pins down."""

import math
import random

import pytest

from s3eval import answer_parser as ap

MONEY = {"A": "$6", "B": "$7", "C": "$8", "D": "$9"}
FALLBACK = None  # expected rule "fallback": the letter comes from the RNG

# (response, options, expected letter or FALLBACK, expected rule, why)
CHOICE_CASES = [
    ("The answer is C.", MONEY, "C", "space", "final '.' stripped, then ' C '"),
    ("A unit cost of $8 applies here.", MONEY, "A", "space", "the article 'A' matches before content is checked"),
    ("(A) is wrong; the correct option is (D)", MONEY, "D", "bracket", "last bracket occurrence wins"),
    ("I believe the overhead per unit is $8 overall", MONEY, "C", "content", "9 tokens, option text '$8'"),
    ("The correct answer is:\nB", MONEY, FALLBACK, "fallback", "newline before B; 5 tokens, no content rule"),
    ("B", MONEY, "B", "space", "bare letter"),
    ("(B)", MONEY, "B", "bracket", "bracketed letter"),
    ("B.", MONEY, "B", "space", "trailing period stripped"),
    ("B,.", MONEY, FALLBACK, "fallback", "',' pass runs before '.', so the uncovered comma stays: 'B,'"),
    ("B.,", MONEY, "B", "space", "',' then '.' passes both apply"),
    ("B. ", MONEY, FALLBACK, "fallback", "a trailing space protects the period"),
    ("b", MONEY, FALLBACK, "fallback", "lowercase letters never match"),
    ("Answer: (c)", MONEY, FALLBACK, "fallback", "bracket rule is case-sensitive"),
    ("A and B", MONEY, "B", "space", "space rule tie: last occurrence"),
    ("B or A", MONEY, "A", "space", "space rule tie: last occurrence"),
    ("(A) (B)", MONEY, "B", "bracket", "bracket tie: last occurrence"),
    ("(B) then A", MONEY, "B", "bracket", "bracket rule pre-empts the space rule"),
    ("A (B)", MONEY, "B", "bracket", "bracket rule pre-empts the space rule"),
    ("\nB\n", MONEY, FALLBACK, "fallback", "newlines are not spaces"),
    ("\tC", MONEY, FALLBACK, "fallback", "tabs are not spaces"),
    ("Option C is correct", MONEY, "C", "space", "letter inside a sentence"),
    ("?B?", MONEY, "B", "space", "'?' stripped from both ends"),
    ("'B'", MONEY, "B", "space", "quotes stripped"),
    ("!B", MONEY, "B", "space", "'!' stripped"),
    (":B;", MONEY, "B", "space", "';' pass then ':' pass"),
    ("B;.", MONEY, "B", "space", "'.' pass uncovers ';', which its later pass strips"),
    ("B.;", MONEY, FALLBACK, "fallback", "'.' pass runs before ';', so the period stays: 'B.'"),
    ("(E)", MONEY, FALLBACK, "fallback", "E is not an option letter"),
    ("The answer is (E) not A", MONEY, "A", "space", "(E) ignored, ' A ' found"),
    ("AB", MONEY, FALLBACK, "fallback", "no separating space"),
    ("A)", MONEY, FALLBACK, "fallback", "half a bracket is nothing"),
    ("(A", MONEY, FALLBACK, "fallback", "half a bracket is nothing"),
    ("Answer: A", MONEY, "A", "space", "letter after a colon and space"),
    ("Answer:B", MONEY, FALLBACK, "fallback", "no space before the letter"),
    ("Both (A) and (C) seem plausible, but (A) is final", MONEY, "A", "bracket", "rfind: (A) occurs last"),
    ("one two three four five $8", MONEY, "C", "content", "6 tokens: content rule applies"),
    ("one two three four $8", MONEY, FALLBACK, "fallback", "5 tokens: content rule does not apply"),
    ("the city in question is definitely TAMPA", {"A": "Tampa", "B": "Miami"}, "A", "content", "case-insensitive"),
    ("", MONEY, FALLBACK, "fallback", "empty response"),
    ("   ", MONEY, FALLBACK, "fallback", "whitespace only"),
    ("A  B", MONEY, "B", "space", "double space still pads both letters"),
    ("D D A", MONEY, "A", "space", "candidates in letter order, tie by last position"),
    ("（B）", MONEY, FALLBACK, "fallback", "full-width brackets do not count"),
    ("The correct answer is option B, which is $7.", MONEY, "B", "content", "'B,' misses the space rule; '$7'"),
    ("The correct answer is option D, not C", MONEY, "C", "space", "'D,' misses, ' C ' at the end matches"),
    ("the price might be $66 rather than $6 here", {"A": "$6", "B": "$66"}, "A", "content", "'$6' occurs last"),
    ("the price might be $6 rather than $66 here", {"A": "$6", "B": "$66"}, "A", "content",
     "rfind('$6') finds the '$6' inside '$66', which starts later than the first '$6' but equal to '$66': tie to A"),
    ("i think the answer here is a cat", {"A": "cat", "B": "cat"}, "A", "content", "equal positions: earlier letter"),
    ("this is a long answer with no letters", {"A": "", "B": "x"}, "A", "content",
     "an empty option text is in every response and its rfind is the end"),
    ("I pick $9 and then (B)", MONEY, "B", "bracket", "bracket beats content"),
    ("It costs $7", MONEY, FALLBACK, "fallback", "3 tokens: no content rule"),
    ("It is $6 or maybe $9 at most", MONEY, "D", "content", "two contents, '$9' later"),
    ("C is correct.", MONEY, "C", "space", "letter at the start"),
    ("A.", MONEY, "A", "space", "period stripped"),
    ("(A)(B)(C)", MONEY, "C", "bracket", "adjacent brackets, last wins"),
    ("E", {"A": "x", "B": "y", "C": "z", "D": "w", "E": "v"}, "E", "space", "fifth letter"),
    ("..B..", MONEY, "B", "space", "repeated periods removed in one pass"),
    (",B.", MONEY, "B", "space", "leading comma, trailing period"),
    ("I'd say B'", MONEY, "B", "space", "trailing quote stripped, inner apostrophe kept"),
    ("A\u00a0B", MONEY, FALLBACK, "fallback", "a no-break space is not an ASCII space (split() still sees 2 tokens)"),
]


@pytest.mark.parametrize("response,options,expected,rule,why", CHOICE_CASES, ids=[c[4] for c in CHOICE_CASES])
def test_parse_choice(response, options, expected, rule, why):
    letters = list(options)
    result = ap.parse_choice(response, letters, options, random.Random(0))
    assert result.rule == rule
    if expected is FALLBACK:
        assert result.fallback and result.answer == random.Random(0).choice(letters)
    else:
        assert result.answer == expected and not result.fallback


def test_fallback_stream_matches_seeded_module_random():
    """Each fallback consumes one draw of one stream seeded 42, as the official module-level `random` does."""
    rng = ap.new_fallback_rng()
    draws = [ap.parse_choice("no idea", list("ABCD"), MONEY, rng).answer for _ in range(6)]
    assert draws == ["A", "A", "C", "B", "B", "B"]
    # A parseable response in between consumes nothing.
    rng = ap.new_fallback_rng()
    first = ap.parse_choice("no idea", list("ABCD"), MONEY, rng).answer
    ap.parse_choice("B", list("ABCD"), MONEY, rng)
    second = ap.parse_choice("no idea", list("ABCD"), MONEY, rng).answer
    assert [first, second] == ["A", "A"]


@pytest.mark.parametrize(
    "gold,prediction,expected",
    [("A", "A", True), ("A", "B", False), (("A", "B"), "B", True), (("A", "B"), "C", False), ("A", "a", False)],
)
def test_score_choice(gold, prediction, expected):
    assert ap.score_choice(gold, prediction) is expected


# (response, gold, correct, why)
OPEN_CASES = [
    ("so the result is Tampa, Florida.", ("Tampa", "Florida"), True, "shortest tail contains 'tampa'"),
    ("1/2", "0.5", False, "fractions stay strings; 1 and 2 are not 0.5"),
    ("x = 12\nThus the answer is 7", "12", False, "'=' counts only in the last piece"),
    ("x = 12\nThus the answer is 7", "7", True, "tail after 'is ' in the last piece"),
    ("12", "12.0", True, "both become the float 12.0"),
    ("12.004", "12", True, "rounded to 2 decimals"),
    ("12.006", "12", False, "12.01 != 12.0"),
    ("1,234", "1234", True, "commas removed before float()"),
    ("The answer is 3.429", ("24/7", "3.429"), True, "list gold, float element"),
    ("24/7", ("24/7", "3.429"), True, "list gold, string element"),
    ("a", "A", True, "single characters become padded variants on both sides"),
    ("cat", "a", False, "a padded single-character gold is not inside 'cat'"),
    ("this is c", "C", True, "'this ' contains 'is '; the tail is 'c'"),
    ("The answer is B", "A", False, "different letter"),
    ("inf", "inf", True, "float('inf') parses and equals itself"),
    ("nan", "nan", False, "nan never equals nan"),
    ("1e3", "1000", True, "scientific notation through float()"),
    ("1.5e-3 units", "0.0015", True, "both round to 0.0"),
    ("0.001", "0", True, "rounding to 2 decimals makes it 0.0"),
    ("-5", "-5", True, "negative numbers"),
    ("The value is -3.5", "3.5", False, "'-3.5' is a float; floats never match strings"),
    ("The temperature is 25 degrees", "25", True, "number extracted from the tail"),
    ("answer: 42", "42", True, "'answer' without a following space is no indicator; number from the whole text"),
    ("thus x=5\ny=6", "5", True, "first piece uses 'thus ', last piece uses '='"),
    ("thus x=5\ny=6", "6", True, "last piece tail after '='"),
    ("Therefore, the result is 100 kg.", "100", True, "number in the tail"),
    ("It is 1,000,000", "1000000", True, "comma-grouped number"),
    ("3 apples", "3", True, "plain integer"),
    ("Paris", "paris", True, "case-insensitive"),
    ("Paris, France", "France", True, "substring match"),
    ("MgS", ("$MgS$", "MgS"), True, "list gold"),
    ("$MgS$", "MgS", True, "string contains the gold"),
    ("1_000", "1000", True, "Python float() accepts underscores"),
    ("The answer is 7.", "7", True, "trailing period stripped before parsing"),
    ("7 or 8", "8", True, "all numbers are candidates"),
    ("", "0", False, "empty response"),
    ("1,234.5 m", "1234.5", False, "the comma pattern yields 1,234 and the plain one 234.5, never 1234.5"),
    ("The answer is 12", "1", False, "12.0 != 1.0; strings '12' never compared with float golds"),
    ("so the answer is: apple", "apple", True, "tail ': apple' after 'is ' still contains 'apple'"),
    ("The answer is\nB", "B", False, "first piece yields the key 'is' (after 'answer '), so the last piece 'b' is never used"),
]


@pytest.mark.parametrize("response,gold,expected,why", OPEN_CASES, ids=[c[3] for c in OPEN_CASES])
def test_open_answers(response, gold, expected, why):
    assert ap.score_open(gold, ap.parse_open(response)) is expected


@pytest.mark.parametrize(
    "response,parsed",
    [
        ("so the result is Tampa, Florida.", ["tampa, florida"]),
        ("x = 12\nThus the answer is 7", [7.0]),
        ("1,234.5 m", [1234.0, 234.5, "1,234.5 m"]),
        ("a", [" a", "a "]),
        ("The answer is .", ["is"]),
        ("so", ["so"]),
        ("so .", ["so"]),
        ("It is 1,000,000", [0.0, 1000000.0]),  # the key itself is a number; '000' is a fragment
        ("the result is = .", ["the result is ="]),
    ],
)
def test_parse_open_candidates(response, parsed):
    assert ap.parse_open(response) == parsed


def test_parse_open_is_deterministic_and_sorted():
    values = ap.parse_open("so 3 or 2 or 1, thus x")
    assert values == ap.parse_open("so 3 or 2 or 1, thus x")
    floats = [v for v in values if isinstance(v, float)]
    assert floats == sorted(floats, key=repr)


def test_normalize_open_value():
    assert ap.normalize_open_value(" 3.14159 ") == [3.14]
    assert ap.normalize_open_value("X") == [" x", "x "]
    assert ap.normalize_open_value("Hello") == ["hello"]
    assert math.isinf(ap.normalize_open_value("-inf")[0])


def test_extract_numbers_keeps_fragments_in_pattern_order():
    # The plain pattern also yields '234' (from 1,234), '1' and '-3' (from 1.5e-3).
    assert ap.extract_numbers("1,234 and 1.5e-3 and -7") == ["1,234", "1.5e-3", "234", "1", "-3", "-7"]
    assert ap.extract_numbers("3/4") == ["3", "4"]
