"""S³ prompts, exactly as the released code builds them (s-nlp/s3@b504543, `example.ipynb`).

The layout is replica-based: a system replica, then **one user replica per query item** (a text, or a whole
modality block ``<MS><img><img><img><img></MS>``), then ``<RS><bot>``. Each piece is tokenised on its own with
``add_special_tokens=False`` and the ids are concatenated, as the released code does; BOS comes from the string
``<s>``. With the released slow (legacy SentencePiece) tokenizer every text piece therefore starts with its own
dummy-prefix ``▁``.

How a harness request becomes S³ query items is :func:`query_items` — the one place that decides it:
the request's prompt text is the first item and each media item follows as its own item, in request order
(for MMMU: the question with its options, then the images in the task's image order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

from ...types import Media, Request

BOS = "<s>"
BEGIN_SYSTEM = "<RS><system>"
BEGIN_USER = "<RS><user>"
BEGIN_BOT = "<RS><bot>"
END_REPLICA = "</RS>"
MODALITY_START = "<MS>"
MODALITY_END = "</MS>"
MODALITY_TOKENS = {"image": "<img>", "audio": "<audio>"}
N_MODALITY_EMBS = 4
# Every string the prompts use; the loader records how the tokenizer encodes each.
PROMPT_STRINGS = ("<RS>", "</RS>", "<user>", "<bot>", "<system>", "<MS>", "</MS>", "<img>", "<audio>", "<s>")

NOTEBOOK_SYSTEM_PROMPT = "You are an AI assistant. Answer briefly, using a single phrase."
CONTEST_SYSTEM_PROMPT = "You are an AI assistant."
# What the contest `generate.py` returns when the decoded answer is empty (the notebook has no fallback).
EMPTY_ANSWER_FALLBACK = "I can't answer that question"


@dataclass(frozen=True)
class QueryItem:
    kind: Literal["text", "image", "audio"]
    text: Optional[str] = None
    media: Optional[Media] = None


def query_items(request: Request) -> list[QueryItem]:
    """The S³ query for a harness request: its prompt text, then one item per media in request order."""
    items = [QueryItem("text", text=request.prompt)] if request.prompt else []
    items.extend(QueryItem(m.kind, media=m) for m in request.media)
    return items


def modality_block(kind: str) -> str:
    return MODALITY_START + MODALITY_TOKENS[kind] * N_MODALITY_EMBS + MODALITY_END


def prompt_pieces(items: Sequence[QueryItem], system_prompt: str) -> list[str]:
    """The chunks the released code tokenises one by one."""
    pieces = [BOS, BEGIN_SYSTEM, system_prompt, END_REPLICA]
    for item in items:
        body = item.text if item.kind == "text" else modality_block(item.kind)
        pieces += [BEGIN_USER, body, END_REPLICA]  # type: ignore[list-item]
    pieces.append(BEGIN_BOT)
    return pieces


def encode_pieces(tokenizer, pieces: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for piece in pieces:
        ids.extend(tokenizer(piece, add_special_tokens=False).input_ids)
    return ids
