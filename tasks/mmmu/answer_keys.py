"""MMMU answer-key versions and the official key-file format.

A version pins the values of the items whose gold changed in the official key's history, on top of whatever
the data source holds, so that a score says exactly which key produced it:

- ``current``: the GitHub key since MMMU commit bbaa1eb (2023-12-14, MMMU issue #11): Literature_10 = C,
  Literature_15 = A. This is `answer_dict_val.json` today.
- ``pre-2023-12-14``: the key of the paper and the original leaderboard (MMMU bf380a2): Literature_10 = D,
  Literature_15 = B.
- ``dataset``: the data source's answers as they are, nothing pinned.

The hub's July 2026 corrections of Design_15 and Art_Theory_4 (MMMU issue #84) are not offered as a version:
their new values are only inferred, not confirmed. ``answer_key_hash`` in every result fingerprints the golds
actually used, so a changed source is visible either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from s3eval.provenance import canonical_hash
from s3eval.storage import read_json
from s3eval.task import TaskError
from s3eval.types import Gold

KEY_VERSIONS: dict[str, dict[str, str]] = {
    "current": {"validation_Literature_10": "C", "validation_Literature_15": "A"},
    "pre-2023-12-14": {"validation_Literature_10": "D", "validation_Literature_15": "B"},
    "dataset": {},
}
DEFAULT_KEY_VERSION = "current"


def check_version(version: str) -> str:
    if version not in KEY_VERSIONS:
        raise TaskError(f"unknown MMMU answer_key {version!r}; choose one of {', '.join(KEY_VERSIONS)}")
    return version


def pinned_gold(version: str, sample_id: str, gold: Gold) -> Gold:
    return KEY_VERSIONS[version].get(sample_id, gold)


def golds_hash(golds: Mapping[str, Gold]) -> str:
    return canonical_hash(sorted((k, list(v) if isinstance(v, tuple) else v) for k, v in golds.items()))


def load_official_key(path: Path) -> dict[str, tuple[str, Gold]]:
    """Read an official ``answer_dict_val.json``: ``{id: {"question_type", "ground_truth"}}`` →
    ``{id: (answer_type, gold)}``."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise TaskError(f"answer key {path}: expected an object mapping ids to answers")
    key = {}
    for sample_id, entry in data.items():
        if not isinstance(entry, dict) or "ground_truth" not in entry or "question_type" not in entry:
            raise TaskError(f"answer key {path}: entry {sample_id!r} lacks question_type/ground_truth")
        truth = entry["ground_truth"]
        gold: Gold = truth if isinstance(truth, str) else tuple(str(t) for t in truth)
        answer_type = "choice" if entry["question_type"] == "multiple-choice" else "open"
        key[sample_id] = (answer_type, gold)
    return key
