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
    # Extra keyword arguments for the language model's generate (e.g. cache_implementation="static"); options,
    # off by default.
    generate_options: dict = field(default_factory=dict)


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
    too_long = context_error(c, len(ids), extra_tokens, extra_what)
    if too_long is not None:
        prepared.error, prepared.error_kind = too_long, "data"
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


def context_error(c: Components, n_ids: int, extra_tokens: int, extra_what: str = "to generate") -> Optional[str]:
    """The data error of a prompt of ``n_ids`` tokens that with ``extra_tokens`` more exceeds the context."""
    if c.context_length is not None and n_ids + extra_tokens > c.context_length:
        return (f"prompt is {n_ids:,} tokens + {extra_tokens:,} {extra_what}; the model's context is "
                f"{c.context_length:,} tokens")  # fmt: skip
    return None


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


def cost_order(costs: Sequence[int]) -> list[int]:
    """Indices most expensive first (memory errors surface early), ties in input order."""
    return sorted(range(len(costs)), key=lambda i: (-costs[i], i))


def take_batch(order: Sequence[int], start: int, costs: Sequence[int], token_budget: Optional[int],
               max_rows: Optional[int]) -> int:  # fmt: skip
    """End of the batch that starts at ``order[start]``: rows in cost order while the padded size — rows × the
    costliest row's cost (the first, in cost order) — stays within ``token_budget`` and the rows within
    ``max_rows`` (None: no limit). Always at least one row."""
    end = start + 1
    widest = costs[order[start]]
    while end < len(order) and (max_rows is None or end - start < max_rows) and (
        token_budget is None or (end - start + 1) * max(widest, costs[order[end]]) <= token_budget
    ):
        widest = max(widest, costs[order[end]])
        end += 1
    return end


def by_budget(costs: Sequence[int], token_budget: Optional[int], max_rows: Optional[int] = None) -> list[list[int]]:
    """Indices in cost order cut into batches by ``take_batch``: a token budget and/or a row limit."""
    order, batches, start = cost_order(costs), [], 0
    while start < len(order):
        end = take_batch(order, start, costs, token_budget, max_rows)
        batches.append(order[start:end])
        start = end
    return batches


class _FiniteLogits:
    """A forward hook on the output head: per row, whether every step's last-position logits were finite (no NaN
    or inf). Replaces keeping every step's scores (rows × vocabulary × steps floats: gigabytes for big batches)."""

    def __init__(self) -> None:
        self.ok: Optional[torch.Tensor] = None

    def __call__(self, module, inputs, output) -> None:
        logits = output[:, -1] if output.dim() == 3 else output
        finite = torch.isfinite(logits).all(dim=-1)
        self.ok = finite if self.ok is None else self.ok & finite


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
    # Raw logits are checked (a hook on the head), not the processed scores: min_new_tokens sets the end token's
    # score to -inf on purpose, which is not a model failure.
    check = _FiniteLogits()
    handle = c.lm.get_output_embeddings().register_forward_hook(check)
    try:
        with torch.inference_mode():
            options = dict(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, do_sample=False,
                           num_beams=1, eos_token_id=c.eos_id, pad_token_id=c.pad_id, use_cache=True,
                           temperature=None, top_p=None, top_k=None)  # fmt: skip
            options.update(c.generate_options)
            sequences = c.lm.generate(inputs_embeds=embeds, attention_mask=mask, **options)
    finally:
        handle.remove()
    finite = check.ok.tolist() if check.ok is not None else [True] * len(live)
    for i, tokens, ok in zip(live, sequences.tolist(), finite):
        if not ok:
            rows[i].error, rows[i].error_kind = "non-finite logits (NaN or inf) during generation", "model"
            continue
        if c.eos_id in tokens:
            tokens = tokens[: tokens.index(c.eos_id)]
        texts[i] = c.tokenizer.decode(tokens, skip_special_tokens=True)
    return texts


def continuation_logprobs(
    c: Components, rows: Sequence[Prepared], continuations: Sequence[Sequence[int]], preprocessed: Optional[dict] = None
) -> list[Optional[float]]:
    """Σ log p(continuation token | prefix) per row (natural log), one full forward of prompt + continuation per
    row; None for rows whose media failed."""
    vectors = media_vectors(c, rows, preprocessed)
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



def _decoder(c: Components) -> torch.nn.Module:
    """The language model without its output head (LoRA layers included when unmerged)."""
    model = c.lm.get_base_model() if hasattr(c.lm, "get_base_model") else c.lm
    return getattr(model, model.base_model_prefix)


def shared_prefix_logprobs(
    c: Components, rows: Sequence[Prepared], continuations: Sequence[Sequence[Sequence[int]]],
    preprocessed: Optional[dict] = None,
) -> list[Optional[list[float]]]:
    """Σ log p(continuation token | prefix) for every continuation of every row (natural log), running each
    row's prompt once: the prompts go through the model once (left-padded), their key/value cache is repeated for
    each row's continuations, and only the continuation tokens are run after it. Equal to
    ``continuation_logprobs`` on (prompt, continuation) pairs up to float rounding. None for rows whose media
    failed."""
    vectors = media_vectors(c, rows, preprocessed)
    live = [i for i, p in enumerate(rows) if p.error is None and continuations[i]]
    results: list[Optional[list[float]]] = [None if p.error is not None else [] for p in rows]
    if not live:
        return results
    embeds, mask = embed_batch(c, [rows[i] for i in live], vectors)
    owner = [k for k, i in enumerate(live) for _ in continuations[i]]  # the prompt row of each continuation
    flat = [list(cont) for i in live for cont in continuations[i]]
    width = max(len(cont) for cont in flat) - 1  # every continuation but its last token goes in after the prompt
    decoder, head = _decoder(c), c.lm.get_output_embeddings()
    with torch.inference_mode():
        out = decoder(inputs_embeds=embeds, attention_mask=mask, use_cache=width > 0)
        # The prompt's last position predicts each continuation's first token: one normaliser per prompt.
        first = torch.log_softmax(head(out.last_hidden_state[:, -1]).float(), dim=-1)
        select = torch.tensor(owner, device=embeds.device)
        first_ids = torch.tensor([cont[0] for cont in flat], device=embeds.device)
        totals = first[select].gather(1, first_ids[:, None])[:, 0]
        if width > 0:
            cache = out.past_key_values
            cache.batch_select_indices(select)  # each prompt's keys and values, once per continuation
            ids = torch.full((len(flat), width), c.pad_id, dtype=torch.long)
            tail = torch.zeros((len(flat), width), dtype=torch.long)
            for k, cont in enumerate(flat):
                ids[k, : len(cont) - 1] = torch.tensor(cont[:-1], dtype=torch.long)
                tail[k, : len(cont) - 1] = 1
            ids, tail = ids.to(c.device), tail.to(c.device)
            hidden = decoder(
                inputs_embeds=c.lm.get_input_embeddings()(ids), attention_mask=torch.cat([mask[select], tail], dim=1),
                past_key_values=cache, use_cache=False,
            ).last_hidden_state  # fmt: skip
            # The output head (the costliest part at small widths) runs on real positions only, not on padding.
            real = tail.bool()
            logprobs = torch.log_softmax(head(hidden[real]).float(), dim=-1)
            targets = torch.tensor([token for cont in flat for token in cont[1:]], device=c.device)
            picked = logprobs.gather(1, targets[:, None])[:, 0]
            rows_of = torch.arange(len(flat), device=c.device)[:, None].expand(-1, width)[real]
            totals = totals.index_add(0, rows_of, picked)
    values = totals.tolist()
    k = 0
    for i in live:
        results[i] = values[k : k + len(continuations[i])]
        k += len(continuations[i])
    return results
