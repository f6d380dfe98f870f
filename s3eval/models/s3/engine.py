"""Batched S³ inference: prompts to ids, media to projected vectors spliced into the placeholder positions,
left-padded batches formed by cost, greedy generation and continuation log-likelihoods.

Batch-size invariance: every row is left-padded and masked, and rows never interact, so a request's output
does not depend on which others share its batch (tested in fp32 at batch size 1 and N)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from ...types import Media, Request
from .encoders import MediaEncoder, MediaError, media_label
from .feature_cache import FeatureCache
from .projector import project
from .prompt import N_MODALITY_EMBS, dialog_media, dialog_pieces, encode_pieces


@dataclass
class Prepared:
    ids: list[int]
    media: list[Media]
    runs: list[int] = field(default_factory=list)  # start of each placeholder run, in media order
    media_hashes: list[str] = field(default_factory=list)
    error: Optional[str] = None
    error_kind: str = "model"

    @property
    def cost(self) -> int:
        """Text tokens + N_MODALITY_EMBS per media item: the placeholders are already in the ids."""
        return len(self.ids)


@dataclass
class Components:
    tokenizer: object
    lm: torch.nn.Module
    projector: torch.nn.Module
    encoder: MediaEncoder
    cache: FeatureCache
    media_token_ids: dict[str, int]
    eos_id: int
    pad_id: int
    lm_hidden: int
    device: torch.device
    dtype: torch.dtype
    system_prompt: str
    context_length: Optional[int] = None  # the base's max_position_embeddings; None: unchecked


def placeholder_runs(ids: Sequence[int], token_kind: dict[int, str]) -> list[tuple[int, int, str]]:
    """Maximal runs of one placeholder id: (start, length, kind)."""
    runs, i = [], 0
    while i < len(ids):
        kind = token_kind.get(ids[i])
        if kind is None:
            i += 1
            continue
        j = i
        while j < len(ids) and ids[j] == ids[i]:
            j += 1
        runs.append((i, j - i, kind))
        i = j
    return runs


def prepare(c: Components, request: Request, extra_tokens: int = 0, extra_what: str = "to generate") -> Prepared:
    """Ids and media of a request, its dialog history included. A prompt that with ``extra_tokens`` more (the
    generation budget, or the continuation scored) exceeds the model's context is refused here, as a data error,
    before anything reaches the model."""
    ids = encode_pieces(c.tokenizer, dialog_pieces(request, c.system_prompt))
    media = dialog_media(request)
    prepared = Prepared(ids=ids, media=media)
    if c.context_length is not None and len(ids) + extra_tokens > c.context_length:
        prepared.error, prepared.error_kind = (
            f"prompt is {len(ids):,} tokens + {extra_tokens:,} {extra_what}; the model's context is "
            f"{c.context_length:,} tokens",
            "data",
        )
        return prepared
    token_kind = {token_id: kind for kind, token_id in c.media_token_ids.items()}
    runs = placeholder_runs(ids, token_kind)
    expected = [m.kind for m in media]
    if [kind for _, _, kind in runs] != expected or any(length != N_MODALITY_EMBS for _, length, _ in runs):
        # E.g. a literal "<img>" in the question text: splicing would misplace vectors, so refuse.
        prepared.error = (
            f"placeholder mismatch: the prompt has {len(runs)} media placeholder run(s) "
            f"{[(kind, length) for _, length, kind in runs]} for {len(expected)} media item(s) {expected}"
        )
        return prepared
    prepared.runs = [start for start, _, _ in runs]
    hashes = []
    for item in media:
        try:
            hashes.append(item.content_hash())
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            prepared.error, prepared.error_kind = f"{media_label(item)}: cannot read media: {reason}", "media"
            return prepared
    prepared.media_hashes = hashes
    return prepared


def _preprocess(c: Components, media: Media):
    try:
        return c.encoder.preprocess(media)
    except MediaError as exc:
        return exc


def preprocess_batch(c: Components, batch: Sequence[Prepared]) -> dict[str, object]:
    """Decoded, transformed encoder inputs (or the MediaError) for the batch's media not already cached. Safe to
    run in a background thread while the GPU works on the previous batch."""
    first_media = {h: m for p in batch for m, h in zip(p.media, p.media_hashes)}
    missing = [h for h in first_media if not c.cache.contains(h)]
    # Decoding and resizing release the GIL, so threads run them in parallel.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return dict(zip(missing, pool.map(lambda h: _preprocess(c, first_media[h]), missing)))


def media_vectors(
    c: Components, batch: Sequence[Prepared], preprocessed: Optional[dict] = None, encode_batch: int = 32
) -> dict[str, torch.Tensor]:
    """Projected (N_MODALITY_EMBS, hidden) vectors per media hash; media that fail to decode mark their
    requests with an error instead. ``preprocessed`` is what ``preprocess_batch`` prepared ahead of time."""
    kinds: dict[str, str] = {}
    owners: dict[str, list[Prepared]] = {}
    for prepared in batch:
        for media, media_hash in zip(prepared.media, prepared.media_hashes):
            kinds[media_hash] = media.kind
            owners.setdefault(media_hash, []).append(prepared)
    features: dict[str, torch.Tensor] = {}
    todo: dict[str, list[tuple[str, torch.Tensor]]] = {"image": [], "audio": []}
    missing = []
    for media_hash in kinds:
        cached = c.cache.get(media_hash)
        if cached is not None:
            features[media_hash] = cached
        else:
            missing.append(media_hash)
    ready = dict(preprocessed or {})
    late = [p for p in batch if any(h not in ready for h in p.media_hashes if h in missing)]
    if late:
        ready.update(preprocess_batch(c, late))
    for media_hash in missing:
        result = ready[media_hash]
        if isinstance(result, MediaError):
            for prepared in owners[media_hash]:
                if prepared.error is None:
                    prepared.error, prepared.error_kind = str(result), "media"
        else:
            todo[kinds[media_hash]].append((media_hash, result))
    for kind, items in todo.items():
        for start in range(0, len(items), encode_batch):
            chunk = items[start : start + encode_batch]
            encoded = c.encoder.encode(kind, [tensor for _, tensor in chunk])
            for (media_hash, _), vector in zip(chunk, encoded):
                c.cache.put(media_hash, vector)
                features[media_hash] = vector.cpu()
    out = {}
    with torch.inference_mode():
        for kind in ("image", "audio"):
            hashes = [h for h in features if kinds[h] == kind]
            if hashes:
                stacked = torch.stack([features[h] for h in hashes]).to(c.device, c.dtype)
                for media_hash, vectors in zip(hashes, project(c.projector, kind, stacked, c.lm_hidden)):
                    out[media_hash] = vectors
    return out


def left_pad(rows: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention_mask) with every row right-aligned: the layout generation and scoring both use."""
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, length - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, length - len(row) :] = 1
    return ids, mask


def embed_batch(
    c: Components, rows: Sequence[Prepared], vectors: dict[str, torch.Tensor], extra: Sequence[Sequence[int]] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (inputs_embeds, attention_mask); ``extra[i]`` ids are appended to row i first."""
    full = [p.ids + list(extra[i]) if extra else p.ids for i, p in enumerate(rows)]
    ids, mask = left_pad(full, c.pad_id)
    length = ids.shape[1]
    ids, mask = ids.to(c.device), mask.to(c.device)
    with torch.inference_mode():
        embeds = c.lm.get_input_embeddings()(ids)
        for i, (prepared, row) in enumerate(zip(rows, full)):
            offset = length - len(row)
            for start, media_hash in zip(prepared.runs, prepared.media_hashes):
                embeds[i, offset + start : offset + start + N_MODALITY_EMBS] = vectors[media_hash]
    if not torch.isfinite(embeds).all():
        raise RuntimeError("non-finite input embeddings after splicing")
    return embeds, mask


def by_cost(prepared: Sequence[Prepared], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar cost, most expensive first (memory errors surface early)."""
    order = sorted(range(len(prepared)), key=lambda i: (-prepared[i].cost, i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def generate(
    c: Components, rows: Sequence[Prepared], max_new_tokens: int, min_new_tokens: int = 0,
    preprocessed: Optional[dict] = None,
) -> list[str]:  # fmt: skip
    """Greedy answers; rows whose media fail, or whose logits turn non-finite, get ``error`` set instead."""
    vectors = media_vectors(c, rows, preprocessed)
    live = [i for i, p in enumerate(rows) if p.error is None]
    texts = [""] * len(rows)
    if not live:
        return texts
    embeds, mask = embed_batch(c, [rows[i] for i in live], vectors)
    with torch.inference_mode():
        out = c.lm.generate(
            inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
            do_sample=False, num_beams=1,
            eos_token_id=c.eos_id, pad_token_id=c.pad_id, use_cache=True, temperature=None, top_p=None, top_k=None,
            output_scores=True, return_dict_in_generate=True,
        )  # fmt: skip
    finite = torch.stack([torch.isfinite(step).all(dim=-1) for step in out.scores]).all(dim=0).tolist()
    for i, tokens, ok in zip(live, out.sequences.tolist(), finite):
        if not ok:
            rows[i].error, rows[i].error_kind = "non-finite logits (NaN or inf) during generation", "model"
            continue
        if c.eos_id in tokens:
            tokens = tokens[: tokens.index(c.eos_id)]
        texts[i] = c.tokenizer.decode(tokens, skip_special_tokens=True)
    return texts


def continuation_logprobs(
    c: Components, rows: Sequence[Prepared], continuations: Sequence[Sequence[int]]
) -> list[Optional[float]]:
    """Σ log p(continuation token | prefix) per row (natural log); None for rows whose media failed."""
    vectors = media_vectors(c, rows)
    live = [i for i, p in enumerate(rows) if p.error is None]
    results: list[Optional[float]] = [None] * len(rows)
    if not live:
        return results
    rows = [rows[i] for i in live]
    continuations = [continuations[i] for i in live]
    embeds, mask = embed_batch(c, rows, vectors, extra=continuations)
    keep = max(len(cont) for cont in continuations) + 1
    with torch.inference_mode():
        logits = c.lm(inputs_embeds=embeds, attention_mask=mask, logits_to_keep=keep).logits.float()
    logprobs = torch.log_softmax(logits, dim=-1)
    for i, cont in enumerate(continuations):
        n = len(cont)
        # The logits at position p predict token p + 1; the continuation fills the last n positions.
        row = logprobs[i, keep - n - 1 : keep - 1]
        results[live[i]] = float(row.gather(1, torch.tensor(cont, device=row.device)[:, None]).sum())
    return results

