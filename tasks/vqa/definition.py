"""A question-answering set declared in YAML: where it is, what it holds and how it is scored. Example::

    tasks:
      - name: my_vqa
        path: data/my_vqa          # the set's folder (questions.jsonl inside) or the questions file itself
        modality: image            # text | image | audio | image+audio
        question_type: open        # choice | open
        metric: vqa_accuracy       # see METRICS below
        # optional: layout (s3eval | mmbench | mmau | vqav2 | clotho_aqa, see adapters.py), annotations (vqav2),
        # circular (true: rotate the options, MMBench style), media_root, prompt_suffix, max_new_tokens, description
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from s3eval.metrics import vqa_accuracy
from s3eval.registry import did_you_mean
from s3eval.task import TaskError

from .adapters import LAYOUTS
from .items import QUESTIONS_FILE

MODALITIES = ("text", "image", "audio", "image+audio")
# metric name in a definition -> (question type, the scoring metric in s3eval.scoring)
METRICS = {
    "choice_letter": ("choice", None),  # the shared answer parser (letters)
    "choice_likelihood": ("choice", "choice_likelihood"),
    "token_set": ("choice", "token_set"),  # free text matched against the option texts (MMAU)
    # VQAv2 soft accuracy: the official code's default version (README), or a version named explicitly.
    "vqa_accuracy": ("open", f"vqa_accuracy_{vqa_accuracy.DEFAULT_VERSION}"),
    **{f"vqa_accuracy_{v}": ("open", f"vqa_accuracy_{v}") for v in vqa_accuracy.VERSIONS},
    "exact_match": ("open", "exact_match"),
    "meteor": ("open", "meteor"),
}
# Instruction appended to the question, per metric (overridable with prompt_suffix).
SUFFIXES = {
    "choice_letter": "Answer with the option's letter from the given choices directly.",
    "choice_likelihood": "",
    "token_set": "Answer with the text of the correct option.",
    "vqa_accuracy": "Answer the question using a single word or phrase.",
    "exact_match": "Answer the question using a single word only.",
    "meteor": "",
}
DEFAULT_TOKENS = {"choice_letter": 8, "token_set": 16, "vqa_accuracy": 16, "exact_match": 8, "meteor": 32}
for _version in vqa_accuracy.VERSIONS:  # the versions ask the same question; only the scoring differs
    SUFFIXES[f"vqa_accuracy_{_version}"] = SUFFIXES["vqa_accuracy"]
    DEFAULT_TOKENS[f"vqa_accuracy_{_version}"] = DEFAULT_TOKENS["vqa_accuracy"]
KEYS = {"name", "format", "path", "modality", "question_type", "metric", "layout", "circular", "media_root",
        "prompt_suffix", "max_new_tokens", "description", "annotations"}  # fmt: skip


@dataclass(frozen=True)
class SetDefinition:
    name: str
    path: Path  # the questions file
    modality: str
    question_type: str
    metric: str
    layout: str = "s3eval"
    circular: bool = False
    media_root: Optional[Path] = None
    annotations: Optional[Path] = None
    prompt_suffix: Optional[str] = None
    max_new_tokens: Optional[int] = None
    description: str = ""

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.metric] if self.prompt_suffix is None else self.prompt_suffix

    @property
    def budget(self) -> Optional[int]:
        return self.max_new_tokens or DEFAULT_TOKENS.get(self.metric)

    def to_settings(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def _choice(entry: Mapping[str, Any], key: str, allowed) -> str:
    value = entry.get(key)
    if value not in allowed:
        hint = did_you_mean(str(value), list(allowed)) if value is not None else f"choose one of {', '.join(allowed)}"
        raise TaskError(f"`{key}` is {'missing' if value is None else repr(value)}: {hint}")
    return value


def parse_definition(entry: Mapping[str, Any], base: Path) -> SetDefinition:
    """Validate one YAML entry; relative paths are relative to ``base`` (the YAML file's folder)."""
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise TaskError(f"unknown key(s) {unknown}: {did_you_mean(unknown[0], sorted(KEYS))}")
    if not isinstance(entry.get("path"), str):
        raise TaskError("`path` (the set's folder or questions file) is missing")
    layout = _choice({"layout": entry.get("layout", "s3eval")}, "layout", list(LAYOUTS))
    path = (base / entry["path"]).resolve()
    if path.is_dir():
        path = path / QUESTIONS_FILE
    if not path.is_file():
        raise TaskError(f"questions file {path} not found (`path` is relative to the YAML file)")
    metric = _choice(entry, "metric", list(METRICS))
    question_type = _choice(entry, "question_type", ["choice", "open"])
    if METRICS[metric][0] != question_type:
        fits = [m for m, (kind, _) in METRICS.items() if kind == question_type]
        raise TaskError(f"metric {metric!r} does not score {question_type} questions; use one of {', '.join(fits)}")
    circular = entry.get("circular", False)
    if not isinstance(circular, bool) or (circular and question_type != "choice"):
        raise TaskError("`circular` is true or false, and only multiple-choice sets can be circular")
    tokens = entry.get("max_new_tokens")
    if tokens is not None and (not isinstance(tokens, int) or tokens < 1):
        raise TaskError(f"`max_new_tokens` must be a positive integer, got {tokens!r}")
    for key in ("prompt_suffix", "description", "media_root", "annotations"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise TaskError(f"`{key}` must be a string, got {entry[key]!r}")
    media_root, annotations = entry.get("media_root"), entry.get("annotations")
    if annotations is not None and not (isinstance(annotations, str) and (base / annotations).is_file()):
        raise TaskError(f"`annotations` file {annotations!r} not found (relative to the YAML file)")
    return SetDefinition(
        name=entry["name"], path=path, modality=_choice(entry, "modality", MODALITIES), question_type=question_type,
        metric=metric, layout=layout, circular=circular,
        media_root=(base / media_root).resolve() if isinstance(media_root, str) else None,
        annotations=(base / annotations).resolve() if isinstance(annotations, str) else None,
        prompt_suffix=entry.get("prompt_suffix"), max_new_tokens=tokens, description=str(entry.get("description", "")),
    )  # fmt: skip
