"""Official MMMU prompts (byte-exact to `configs/llava1.5.yaml` after YAML folding) and image placement.

Image modes:
- ``first``: only ``image_1``, as the official LLaVA baseline (confirmed in MMMU issue #9).
- ``referenced``: every image the text references, in the order of its first ``<image k>`` reference,
  scanning the question and then the options in order. A repeated reference adds nothing (each image is
  given once); out-of-order references keep text order (``<image 2> … <image 1>`` gives image 2 first).
  An item that references no image at all gets all its images in numeric order.
The ``<image k>`` strings stay verbatim in the prompt text in both modes.
"""

from __future__ import annotations

import re
from typing import Sequence

from s3eval.types import letters_for

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
OPEN_INSTRUCTION = "Answer the question using a single word or phrase."
IMAGE_MODES = ("first", "referenced")
_IMAGE_REF = re.compile(r"<image (\d+)>")


def mc_prompt(question: str, options: Sequence[str]) -> str:
    lines = "".join(f"({letter}) {option}\n" for letter, option in zip(letters_for(len(options)), options))
    return f"{question}\n{lines}\n{MC_INSTRUCTION}"


def open_prompt(question: str) -> str:
    return f"{question}\n{OPEN_INSTRUCTION}"


def referenced_images(question: str, options: Sequence[str]) -> list[int]:
    """Image numbers in order of first reference (question, then options), without repeats."""
    order: list[int] = []
    for text in (question, *options):
        for match in _IMAGE_REF.finditer(text):
            number = int(match.group(1))
            if number not in order:
                order.append(number)
    return order


def image_order(mode: str, question: str, options: Sequence[str], present: Sequence[int]) -> list[int]:
    """The image numbers given to the model for ``mode``; ``present`` lists the numbers the row has."""
    if mode == "first":
        return [1]
    order = referenced_images(question, options)
    return order if order else sorted(present)
