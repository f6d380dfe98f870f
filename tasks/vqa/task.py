"""The generic question-answering task: any set in the project's format (or an adapted public layout), declared
in YAML or built in, with image, audio or both, multiple choice or open, scored by the metric its definition
names; optional circular evaluation for multiple choice."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from s3eval.metrics import circular
from s3eval.results import Headline, mean_headline
from s3eval.scoring import RIGHT_WRONG, version_of
from s3eval.task import Task, TaskError, TaskInfo, TaskOptions, default_headline
from s3eval.types import Media, Record, Request, Sample, letters_for

from .adapters import converted_rows
from .definition import METRICS, SetDefinition
from .items import Item, ItemError, read_items
from .prompts import qa_prompt


def _modality_problem(item: Item, modality: str) -> Optional[str]:
    has = "+".join(kind for kind, media in (("image", item.images), ("audio", item.audios)) if media) or "text"
    return None if has == modality else f"the set is {modality} but this item has {has} media"


class QATask(Task):
    group_kinds = ("category", "subcategory", "question_type", "modality")
    leaderboard_group = "category"

    def __init__(self, info: TaskInfo, definition: SetDefinition, options: TaskOptions) -> None:
        self.info, self.definition = info, definition
        options.check_known(info)

    @property
    def scoring_metric(self) -> Optional[str]:
        if self.definition.circular and self.definition.metric == "choice_letter":
            return "circular_choice"  # a rotation is read strictly: no random letter can pass it
        return METRICS[self.definition.metric][1]

    @property
    def unit(self) -> str:  # type: ignore[override]
        return "question" if self.definition.circular else "item"

    def settings(self) -> dict[str, Any]:
        d = self.definition
        return {"split": "local", "prompt_mode": d.metric + ("-circular" if d.circular else ""),
                "answer_key": "dataset", "metric": d.metric, "metric_version": version_of(self.scoring_metric),
                "definition": d.to_settings()}  # fmt: skip

    def samples(self) -> list[Sample]:
        d = self.definition
        try:
            items = read_items(d.path, converted_rows(d.layout, d.path, d.annotations), d.media_root)
        except ItemError as exc:
            raise TaskError(str(exc)) from exc
        out: list[Sample] = []
        for item in items:
            problem = item.error or _modality_problem(item, d.modality)
            if problem is None and (len(item.choices) > 0) != (d.question_type == "choice"):
                problem = f"the set is {d.question_type} but this item {'has' if item.choices else 'lacks'} `choices`"
            if problem is not None:
                where = problem if item.error else f"{d.path} (id {item.id}): {problem}"
                out.append(Sample(id=item.id, text="", answer_type=d.question_type, error=where))  # type: ignore[arg-type]
                continue
            out.extend(self._samples_of(item))
        return out

    def _samples_of(self, item: Item) -> list[Sample]:
        d = self.definition
        media = tuple(Media("image", f"image_{k}", path=str(p)) for k, p in enumerate(item.images, 1)) + tuple(
            Media("audio", f"audio_{k}", path=str(p)) for k, p in enumerate(item.audios, 1)
        )
        metadata = {**item.labels, "modality": d.modality, "hint": item.hint}
        if d.question_type == "open":
            return [Sample(item.id, item.question, "open", gold=item.answer, media=media, metadata=metadata)]
        order = list(range(len(item.choices)))
        # Options that name option letters ("Both A and B") would change meaning when rotated: asked once.
        rotations = circular.rotations(order) if d.circular and not circular.keeps_order(item.choices, item.answer) else [order]
        samples = []
        for k, order in enumerate(rotations):
            choices = tuple(item.choices[i] for i in order)
            gold = None
            if isinstance(item.answer, str):
                index = circular.rotated_index(letters_for(len(choices)).index(item.answer), len(choices), k)
                gold = choices[index] if d.metric == "token_set" else letters_for(len(choices))[index]
            sample_id = f"{item.id}@{k}" if d.circular else item.id
            samples.append(Sample(sample_id, item.question, "choice", choices=choices, gold=gold, media=media,
                                  metadata=metadata, unit=item.id if d.circular else None))  # fmt: skip
        return samples

    def build_request(self, sample: Sample) -> Request:
        d = self.definition
        prompt = qa_prompt(sample.text, sample.metadata.get("hint", ""), sample.choices, d.metric, d.suffix)
        if d.metric == "choice_likelihood":
            return Request(self.name, sample.id, prompt, sample.media, candidates=sample.choices, generate=False)
        return Request(self.name, sample.id, prompt, sample.media, max_new_tokens=d.budget)

    def metric_for(self, sample: Sample) -> Optional[str]:
        return self.scoring_metric

    def groups(self, sample: Sample) -> dict[str, str]:
        return {k: sample.metadata[k] for k in self.group_kinds if sample.metadata.get(k)}

    def headline(self, records: Sequence[Record]) -> Headline:
        if not self.definition.circular:
            return default_headline(records, metric=self.definition.metric)
        from s3eval.results import UNIT_ALL

        units = circular.all_correct((r.unit or r.sample_id, bool(r.correct)) for r in records)
        rotations = sum(bool(r.correct) for r in records) / len(records) if records else None
        return mean_headline("circular_accuracy", {u: float(ok) for u, ok in units.items()}, kind=RIGHT_WRONG,
                             unit="question", details={"rotations": len(records), "rotation_accuracy": rotations},
                             definition="share of questions whose every rotation was answered right (MMBench "
                                        "CircularEval); an unreadable answer fails its rotation",
                             unit_score=UNIT_ALL)  # fmt: skip


def definition_info(d: SetDefinition, source: str) -> TaskInfo:
    return TaskInfo(
        name=d.name,
        description=d.description or f"{d.modality} {d.question_type} questions from {d.path}",
        size=None,
        metric=d.metric + (" (circular)" if d.circular else ""),
        data_source=source,
    )
