"""MMMU subjects and disciplines, in the official orders."""

from __future__ import annotations

from typing import Iterable, Union

from s3eval.registry import did_you_mean
from s3eval.task import TaskError

# Discipline → subjects, as the official `DOMAIN_CAT2SUB_CAT`.
DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics", "Energy_and_Power",
        "Materials", "Mechanical_Engineering",
    ),
}  # fmt: skip

DISCIPLINE_OF: dict[str, str] = {s: d for d, subjects in DISCIPLINES.items() for s in subjects}

# The official scripts iterate `CAT_SHORT2LONG`, i.e. alphabetical order. The random parse fallback is drawn
# in this order (then item order), so it is part of reproducing the official numbers.
SUBJECTS: tuple[str, ...] = tuple(sorted(DISCIPLINE_OF))


def split_id(sample_id: str) -> tuple[str, str, int]:
    """``validation_Art_Theory_4`` → ("validation", "Art_Theory", 4); ValueError if malformed."""
    parts = sample_id.split("_")
    if len(parts) < 3 or not parts[-1].isdigit():
        raise ValueError(f"id {sample_id!r} is not of the form <split>_<Subject>_<n>")
    return parts[0], "_".join(parts[1:-1]), int(parts[-1])


def subject_of(sample_id: str) -> str:
    """The subject part of an id, as the official `main_eval_only.py` derives it."""
    return split_id(sample_id)[1]


def resolve_subjects(selection: Union[None, str, Iterable[str]]) -> tuple[str, ...]:
    """Subjects named directly or through their discipline, in official order; all subjects if empty."""
    if selection is None or selection == "" or selection == []:
        return SUBJECTS
    names = [s.strip() for s in selection.split(",")] if isinstance(selection, str) else [str(s) for s in selection]
    chosen: set[str] = set()
    for name in filter(None, names):
        if name in DISCIPLINE_OF:
            chosen.add(name)
        elif name in DISCIPLINES:
            chosen.update(DISCIPLINES[name])
        else:
            known = list(SUBJECTS) + list(DISCIPLINES)
            raise TaskError(f"unknown MMMU subject or discipline {name!r}: {did_you_mean(name, known)}")
    return tuple(s for s in SUBJECTS if s in chosen)
