"""Built-in question sets, written on first use (into the user cache, ``tasks.builtin_media.ensure_set``) in the
project's own format from media inside installed packages (``tasks.builtin_media``), then read back through the
same loader as a user's set:

- ``vqa_builtin_images``: real photographs and scans, multiple choice (what is shown; colour or black and white);
- ``aqa_builtin_sounds``: real sound clips, one-word answers scored by normalised exact match (what made the
  sound; longer than two seconds; is it music).

Answers are unambiguous by construction: object labels name files chosen for one obvious subject, and colour
and duration are measured from the files."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from tasks import builtin_media


def _options(answer: str, others: list[str], seed: str, n: int = 4) -> list[str]:
    rng = random.Random(seed)
    options = rng.sample([o for o in others if o != answer], n - 1) + [answer]
    rng.shuffle(options)
    return options


def build_images(folder: Path) -> list[dict]:
    rows = []
    labels = [builtin_media.IMAGES[k][2] for k in builtin_media.IMAGES]
    for key in builtin_media.IMAGES:
        item = builtin_media.image(key)
        name = f"images/{key}{item.path.suffix}"
        shutil.copyfile(item.path, folder / name)
        rows.append({"id": f"{key}-object", "question": "What is shown in this image?", "image": name,
                     "choices": _options(item.label, labels, key), "answer": item.label, "category": "object"})
        rows.append({"id": f"{key}-colour", "question": "Is this image in colour or in black and white?", "image": name,
                     "choices": ["in colour", "black and white"],
                     "answer": "black and white" if item.grey else "in colour", "category": "colour"})  # fmt: skip
    return rows


def build_sounds(folder: Path) -> list[dict]:
    rows = []
    for key in builtin_media.SOUNDS:
        item = builtin_media.sound(key)
        name = f"audios/{key}{item.path.suffix}"
        shutil.copyfile(item.path, folder / name)
        if item.sources:
            rows.append({"id": f"{key}-source", "question": "What made this sound?", "audio": name,
                         "answer": list(item.sources), "category": "source"})  # fmt: skip
        rows.append({"id": f"{key}-long", "question": "Is this sound longer than two seconds? Answer yes or no.",
                     "audio": name, "answer": "yes" if item.seconds > 2.0 else "no", "category": "duration"})
        rows.append({"id": f"{key}-music", "question": "Is this sound music? Answer yes or no.", "audio": name,
                     "answer": "yes" if item.music else "no", "category": "music"})
    return rows


# name -> (builder, definition without the path, number of items: `s3eval tasks` shows it before the set is built)
BUILTIN_SETS = {
    "vqa_builtin_images": (build_images, 34, {"modality": "image", "question_type": "choice", "metric": "choice_letter",
                                          "description": "real images from scikit-image, scikit-learn and matplotlib: "
                                                         "what is shown, colour or black and white (built in)"}),
    "aqa_builtin_sounds": (build_sounds, 17, {"modality": "audio", "question_type": "open", "metric": "exact_match",
                                          "description": "real sound clips from pygame: source, duration, music; "
                                                         "one-word answers (built in)"}),
}  # fmt: skip
