"""The MMMU task: official prompts, official parsing (shared parser), instance-weighted aggregation by subject
and discipline, and for the test split a submission file instead of scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from s3eval.config import parse_flag
from s3eval.storage import atomic_write_json
from s3eval.task import Task, TaskError, TaskInfo, TaskOptions
from s3eval.types import Record, Request, Sample

from . import answer_keys, official_formats
from .loading import describe_source, load_rows
from .prompts import IMAGE_MODES, image_order, mc_prompt, open_prompt
from .rows import row_to_sample
from .subjects import DISCIPLINES, SUBJECTS, resolve_subjects

PROMPT_MODES = {"first": "official-first-image", "referenced": "official-referenced-images"}
SPLIT_SIZES = {"dev": 150, "validation": 900, "test": 10500}
ARGUMENTS = {
    "subjects": "comma-separated subjects and/or disciplines, e.g. 'Art,Science' (default: all 30 subjects)",
    "image_mode": "'first' (official baseline: image_1 only) or 'referenced' (all images in <image k> order)",
    "answer_key": "'current' (default), 'pre-2023-12-14' (paper/leaderboard era) or 'dataset' (as loaded)",
    "offline": "true: read the Hugging Face datasets cache, never the network (hub ids only)",
    "cache_dir": "Hugging Face datasets cache directory (default: the library's)",
    "max_new_tokens": "generation budget per item (default: the model's)",
}


class MMMUTask(Task):
    group_kinds = ("subject", "discipline")
    leaderboard_group = "discipline"
    group_order = {
        "discipline": tuple(DISCIPLINES),
        "subject": tuple(s for subjects in DISCIPLINES.values() for s in subjects),
    }

    def __init__(self, info: TaskInfo, split: str, image_mode: str, options: TaskOptions) -> None:
        args = dict(options.args)
        self.info = info
        self.split = split
        self.has_gold = split != "test"
        self.image_mode = args.pop("image_mode", image_mode)
        if self.image_mode not in IMAGE_MODES:
            raise TaskError(f"image_mode must be one of {', '.join(IMAGE_MODES)}, got {self.image_mode!r}")
        self.subjects = resolve_subjects(args.pop("subjects", None))
        self.key_version = answer_keys.check_version(str(args.pop("answer_key", answer_keys.DEFAULT_KEY_VERSION)))
        self.offline = parse_flag(args.pop("offline", False), "task argument offline", TaskError)
        self.cache_dir = args.pop("cache_dir", None)
        budget = args.pop("max_new_tokens", None)
        self.max_new_tokens = int(budget) if budget is not None else None
        self.data = options.data
        self._samples: Optional[list[Sample]] = None

    def settings(self) -> dict[str, Any]:
        golds = {s.id: s.gold for s in self._samples or []}
        return {
            "split": self.split,
            "prompt_mode": PROMPT_MODES[self.image_mode],
            "image_mode": self.image_mode,
            "answer_key": self.key_version if self.has_gold else None,
            "answer_key_hash": answer_keys.golds_hash(golds) if self.has_gold and golds else None,
            "subjects": list(self.subjects) if self.subjects != SUBJECTS else "all",
            "data_source": describe_source(self.data, self.offline),
            "max_new_tokens": self.max_new_tokens,
        }

    def samples(self) -> list[Sample]:
        if self._samples is None:
            rows = load_rows(self.data, self.subjects, self.split, self.cache_dir, self.offline)
            self._samples = [row_to_sample(row, self.key_version if self.has_gold else "dataset") for row in rows]
        return self._samples

    def build_request(self, sample: Sample) -> Request:
        by_number = {int(m.name.rsplit("_", 1)[1]): m for m in sample.media}
        order = image_order(self.image_mode, sample.text, sample.choices, sorted(by_number))
        missing = [n for n in order if n not in by_number]
        if missing:
            raise TaskError(
                f"field 'image_{missing[0]}': image mode {self.image_mode!r} needs <image {missing[0]}> "
                f"but the row has no such image"
            )
        prompt = mc_prompt(sample.text, sample.choices) if sample.answer_type == "choice" else open_prompt(sample.text)
        return Request(self.name, sample.id, prompt, tuple(by_number[n] for n in order), self.max_new_tokens)

    def groups(self, sample: Sample) -> dict[str, str]:
        return {"subject": sample.metadata.get("subject", ""), "discipline": sample.metadata.get("discipline", "")}

    def write_outputs(self, records: Sequence[Record], run_dir: Path) -> list[Path]:
        if self.has_gold:
            return []
        path = run_dir / f"{self.name}_submission.json"
        atomic_write_json(path, official_formats.submission(records))
        return [path]

    def import_predictions(self, path: Path, answer_key: Optional[Path]) -> list[Record]:
        key = answer_keys.load_official_key(answer_key) if answer_key else None
        if key is None and Path(path).is_file():  # eval-only predictions carry no golds; raw outputs do
            key = {s.id: (s.answer_type, s.gold) for s in self.samples() if s.error is None}
        return official_formats.import_predictions(self, path, key, self.subjects)


def make_factory(split: str, image_mode: str, name: str):
    info = TaskInfo(
        name=name,
        description=f"MMMU {split} split, official prompts and parser, images: {image_mode}",
        size=SPLIT_SIZES[split],
        metric="accuracy (official MMMU parse, instance-weighted)" if split != "test" else "submission file (no gold)",
        data_source="hub MMMU/MMMU, a local snapshot (--data DIR) or the datasets cache (offline=true)",
        arguments=ARGUMENTS,
    )

    def factory(options: TaskOptions) -> Task:
        return MMMUTask(info, split, image_mode, options)

    return info, factory
