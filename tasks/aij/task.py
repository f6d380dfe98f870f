"""The AI-Journey-style dialog task: every replica of every dialog is a turn the model answers after the
dialog so far (its own earlier answers included), scored by METEOR against the reference(s) and by a
likelihood PROXY of the contest's undisclosed hidden metric (HM): 1 if the reference answer is more likely,
in the same context, than each distractor. Per-turn score = (METEOR + proxy) / 2, averaged per dialog, then
weighted by dialog type into the contest's integral score (``integral.py``). With ``proxy=false`` only METEOR
is used and the integral is labelled accordingly."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from s3eval.aggregate import unit_means
from s3eval.config import parse_flag
from s3eval.results import WEIGHTED, Headline
from s3eval.scoring import GRADED, version_of
from s3eval.task import Task, TaskError, TaskInfo, TaskOptions
from s3eval.types import Media, Part, Record, Request, Sample

from .dialogs import DIALOGS_FILE, Dialog, DialogError, read_dialogs
from .integral import integral_score, mean

ARGUMENTS = {
    "proxy": "true (default): also score the likelihood proxy of the hidden metric; false: METEOR only",
    "distractors": "how many distractors to draw per replica where the data gives none (default 3)",
    "max_new_tokens": "generation budget per answer (default 32, as the contest code)",
}
DISTRACTOR_SEED = 2023


@dataclass(frozen=True)
class DialogSettings:
    path: Path  # the dialogs file
    proxy: bool = True
    distractors: int = 3
    max_new_tokens: int = 32

    @classmethod
    def from_args(cls, path: Path, args: Mapping[str, Any]) -> "DialogSettings":
        try:
            distractors, budget = int(args.get("distractors", 3)), int(args.get("max_new_tokens", 32))
        except (TypeError, ValueError) as exc:
            raise TaskError(f"distractors and max_new_tokens must be integers ({exc})") from exc
        if distractors < 1 or budget < 1:
            raise TaskError("distractors and max_new_tokens must be at least 1")
        return cls(path, parse_flag(args.get("proxy", True), "proxy", TaskError), distractors, budget)


def _pool(dialogs: Sequence[Dialog]) -> list[str]:
    """Every first reference in the set, once each, in canonical order: where drawn distractors come from."""
    seen: dict[str, None] = {}
    for dialog in dialogs:
        for answers in dialog.answers:
            seen.setdefault(answers[0])
    return list(seen)


def draw_distractors(sample_id: str, references: Sequence[str], pool: Sequence[str], n: int) -> tuple[str, ...]:
    """``n`` other references, the same for a sample on every run (seeded by its id, not by run order)."""
    others = [text for text in pool if text not in references]
    rng = random.Random(f"{DISTRACTOR_SEED}:{sample_id}")
    return tuple(rng.sample(others, min(n, len(others))))


class DialogTask(Task):
    unit = "dialog"
    group_kinds = ("dialog_type", "turn")
    leaderboard_group = "dialog_type"
    group_order = {"dialog_type": ["text", "image", "audio", "image+audio"]}

    def __init__(self, info: TaskInfo, settings: DialogSettings) -> None:
        self.info, self.config = info, settings
        self._parts: dict[str, tuple[Part, ...]] = {}
        self._candidates: dict[str, tuple[str, ...]] = {}

    @property
    def metric(self) -> str:
        return "meteor+likelihood_proxy" if self.config.proxy else "meteor"

    def settings(self) -> dict[str, Any]:
        return {"split": "local", "prompt_mode": "fbc3-dialog", "answer_key": "dataset", "metric": self.metric,
                "metric_version": version_of(self.metric), "distractor_seed": DISTRACTOR_SEED,
                **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.config).items()}}  # fmt: skip

    def samples(self) -> list[Sample]:
        try:
            dialogs = read_dialogs(self.config.path)
        except DialogError as exc:
            raise TaskError(str(exc)) from exc
        pool = _pool([d for d in dialogs if d.error is None])
        out: list[Sample] = []
        for dialog in dialogs:
            if dialog.error is not None:
                out.append(Sample(f"{dialog.id}/1", "", "open", error=dialog.error, unit=dialog.id,
                                  metadata={"dialog_type": "invalid", "turn": "1"}))  # fmt: skip
                continue
            previous = None
            for turn, (parts, answers, given) in enumerate(zip(dialog.replicas, dialog.answers, dialog.distractors), 1):
                sample_id = f"{dialog.id}/{turn}"
                self._parts[sample_id] = parts
                distractors = given or draw_distractors(sample_id, answers, pool, self.config.distractors)
                self._candidates[sample_id] = (answers[0], *distractors)
                out.append(Sample(
                    sample_id, "\n".join(p for p in parts if isinstance(p, str)), "open", gold=answers,
                    media=tuple(p for p in parts if isinstance(p, Media)), follows=previous, unit=dialog.id,
                    metadata={"dialog_type": dialog.type, "turn": str(turn)},
                ))  # fmt: skip
                previous = sample_id
        return out

    def build_request(self, sample: Sample) -> Request:
        if sample.id not in self._parts:
            self.samples()
        candidates = self._candidates[sample.id] if self.config.proxy else ()
        return Request.of_parts(self.name, sample.id, self._parts[sample.id],
                                max_new_tokens=self.config.max_new_tokens, candidates=candidates)  # fmt: skip

    def metric_for(self, sample: Sample) -> Optional[str]:
        return self.metric

    def groups(self, sample: Sample) -> dict[str, str]:
        return dict(sample.metadata)

    def headline(self, records: Sequence[Record]) -> Headline:
        from s3eval.results import UNIT_MEAN

        from .integral import WEIGHTS

        types: dict[str, str] = {}
        for record in records:
            types.setdefault(record.unit or record.sample_id, record.groups.get("dialog_type", "text"))
        valid = [record for record in records if types[record.unit or record.sample_id] != "invalid"]
        result = integral_score(unit_means(valid), types)
        details = {"weight_covered": result["weight_covered"], "by_type": result["by_type"], "turns": len(records),
                   "invalid_dialogs": sum(t == "invalid" for t in types.values())}  # fmt: skip
        if self.config.proxy:  # the two halves, each averaged per dialog and then over dialogs
            for part, label in (("meteor", "meteor"), ("likelihood_proxy", "hidden_metric_PROXY")):
                details[label] = mean(list(unit_means(valid, lambda r, part=part: r.scores.get(part, 0.0)).values()))
        what = "(METEOR + likelihood PROXY of the hidden metric) / 2" if self.config.proxy else "METEOR"
        return Headline(
            metric="integral" + ("" if self.config.proxy else "_meteor_only"), score=result["integral"],
            definition=f"the contest's integral: Σ over dialog types of weight × mean over dialogs of the mean turn "
                       f"score, turn score {what}; weights text 0.1, image 0.2, audio 0.3, image+audio 0.4",
            kind=GRADED, unit="dialog", n_units=len(types), aggregation=WEIGHTED, details=details,
            unit_score=UNIT_MEAN, strata="dialog_type", strata_weights=dict(WEIGHTS),
        )  # fmt: skip


def dialog_info(name: str, description: str, source: str, size: Optional[int] = None) -> TaskInfo:
    return TaskInfo(name=name, description=description, size=size, arguments=ARGUMENTS, data_source=source,
                    metric="integral score of (METEOR + likelihood PROXY of the hidden metric) / 2")  # fmt: skip


def settings_for(path: Path, options: TaskOptions) -> DialogSettings:
    path = Path(options.data) if options.data else path
    if path.is_dir():
        path = path / DIALOGS_FILE
    if not path.is_file():
        raise TaskError(f"dialogs file {path} not found")
    return DialogSettings.from_args(path, options.args)
