"""Trains the tiny sanity S³ release: starting from the tiny random release (seed 0), the LoRA adapter (with its
embed_tokens/lm_head copies) and the projector learn the sanity sets' training split on CPU, ImageBind frozen,
until held-out accuracy reaches the target. The result is written in the released layout; ``ensure_sanity``
keeps it in the user cache (``s3eval.cache``), trained on first use. The same run also writes four of its
checkpoints, from untrained to final, for ``s3eval sweep builtin:sanity-steps`` (``tasks.sanity.steps``).

    python -m tasks.sanity.checkpoint OUT_DIR      →   OUT_DIR/s3, OUT_DIR/base, OUT_DIR/steps/checkpoint-STEP

Why it takes seconds (≈ 20 s on an idle 2-core machine; ``bench/threads.py`` measures it):
- ImageBind is frozen, so every training and held-out image and sound is encoded once, up front; the steps see
  only the cached feature vectors.
- Every prompt of a modality has the same ids (one question, one option list): only the four media vectors and
  the answer differ. The shared text before the media runs once per step (batch 1) and its keys and values are
  repeated over the batch, so a row costs the 8 tokens after it plus the answer. Gradients flow through the
  shared part too: the loss and its gradient are those of the full prompts.
- The frozen features are nearly parallel unit vectors (they differ by ≈ 0.04 per dimension), which the plain
  affine projector learns from slowly. It is trained on standardised features instead, and the standardisation
  is folded into its first layer before saving: the same affine map, applied to raw features.
- Held-out accuracy is read off one batched forward pass every EVAL_EVERY steps (the argmax of the first answer
  token over the whole vocabulary: what greedy decoding emits first) and training stops at STOP_ACCURACY. The
  finished model is then checked once through the inference engine (generation on raw features); that accuracy
  is the one recorded and required.
- The checkpoint series costs ≈ 1 s more: a copy of the trained tensors every few steps (``steps.SnapshotGrid``,
  ≈ 16 MB each, at most SNAPSHOT_LIMIT), one held-out pass per kept copy after training, three adapters saved.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from s3eval.models.s3 import engine
from s3eval.models.s3.builder import COMPLETE_MARK, build_tiny_release, ensure_release, release_main, save_adapter
from s3eval.models.s3.encoders import MediaEncoder, build_imagebind
from s3eval.models.s3.feature_cache import FeatureCache
from s3eval.models.s3.projector import build_projector, project
from s3eval.models.s3.prompt import N_MODALITY_EMBS, NOTEBOOK_SYSTEM_PROMPT
from s3eval.models.s3.validate import validate_release
from s3eval.models.s3.spec import S3Spec
from s3eval.types import Media, Request

from tasks.mmmu.prompts import mc_prompt

from .data import make_items
from .steps import SERIES, Snapshot, SnapshotGrid, choose, write_series

TRAIN_SEED = 1
TRAIN_SIZES = {"image": 100, "audio": 200}
HELD_OUT_SIZES = {"image": 100, "audio": 100}
TARGET_ACCURACY = 0.97  # per modality, on held-out items; training stops early at STOP_ACCURACY
STOP_ACCURACY = 0.99
BATCH = 32  # items per modality per step
LEARNING_RATE = 3e-3
EVAL_EVERY = 10
MAX_STEPS = 600
EXPECTED_SECONDS = 20  # first-use cost on an idle 2-core machine, shown to the user (measured: bench/threads.py)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _components(checkpoint: Path, base: Path) -> tuple[engine.Components, S3Spec]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    spec = S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), "device": "cpu"})
    facts = validate_release(spec)
    lm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    lm.resize_token_embeddings(len(facts.tokenizer), mean_resizing=False)
    lm = PeftModel.from_pretrained(lm, str(spec.adapter), is_trainable=True)
    projector = build_projector(torch.load(spec.projector, map_location="cpu", weights_only=True))
    encoder = MediaEncoder(build_imagebind(str(spec.imagebind), facts.imagebind_config), torch.device("cpu"),
                           torch.float32)  # fmt: skip
    c = engine.Components(
        tokenizer=facts.tokenizer, lm=lm, projector=projector, encoder=encoder, cache=FeatureCache("train"),
        media_token_ids=facts.media_token_ids, eos_id=facts.eos_id, pad_id=facts.pad_id, lm_hidden=facts.lm_hidden,
        device=torch.device("cpu"), dtype=torch.float32, system_prompt=NOTEBOOK_SYSTEM_PROMPT,
    )  # fmt: skip
    return c, spec


@dataclass
class ModalitySet:
    """One modality's items, encoded once: the prompt ids they all share, split at the first media placeholder,
    the (frozen) ImageBind feature of each item, and each item's answer ids (letter + ``</RS>``)."""

    kind: str
    prefix: torch.Tensor  # (1, P): the ids before the media placeholders
    suffix: torch.Tensor  # (1, S): the placeholders up to the prompt's end (``<RS><bot>``)
    features: torch.Tensor  # (n, encoder dim), unit norm
    answers: torch.Tensor  # (n, A)
    prepared: list  # engine.Prepared per item, for the final check through the engine
    chance: float  # the accuracy of a constant answer on the balanced items


def _encode(c: engine.Components, kind: str, n: int, seed: int, split: str) -> ModalitySet:
    items = make_items(kind, n, seed, split)
    requests = [Request("sanity", it.id, mc_prompt(it.question, it.options), (Media(kind, "m", data=it.media),))
                for it in items]  # fmt: skip
    prepared = [engine.prepare(c, r) for r in requests]
    first = prepared[0]
    if any(p.ids != first.ids or p.runs != first.runs or p.error for p in prepared):
        raise RuntimeError(f"sanity {kind} prompts differ beyond their media: the shared-prefix training needs one")
    inputs = [c.encoder.preprocess(r.media[0]) for r in requests]
    with torch.inference_mode():
        features = torch.cat([c.encoder.encode(kind, inputs[i : i + 32]) for i in range(0, len(inputs), 32)])
    answers = [c.tokenizer(it.answer + "</RS>", add_special_tokens=False).input_ids for it in items]
    if len({len(a) for a in answers}) != 1:
        raise RuntimeError(f"sanity {kind} answers tokenise to different lengths: {answers[:4]}")
    start, chance = first.runs[0], 1 / len(items[0].options)
    return ModalitySet(kind, torch.tensor([first.ids[:start]]), torch.tensor([first.ids[start:]]),
                       features.float().clone(), torch.tensor(answers), prepared, chance)  # fmt: skip


def _logits(c: engine.Components, s: ModalitySet, index: torch.Tensor, scale, with_answer: bool) -> torch.Tensor:
    """Logits predicting each answer token (with_answer) or only the first one, for the items ``index``: the shared
    prefix is run once and its keys/values repeated over the rows (exact: no padding, same positions)."""
    rows = len(index)
    cache = c.lm(input_ids=s.prefix, use_cache=True, logits_to_keep=1).past_key_values
    cache.batch_repeat_interleave(rows)
    ids = s.suffix.expand(rows, -1)
    if with_answer:
        ids = torch.cat([ids, s.answers[index, :-1]], dim=1)
    mean, std = scale
    media = project(c.projector, s.kind, (s.features[index] - mean) / std, c.lm_hidden)
    embeds = torch.cat([media, c.lm.get_input_embeddings()(ids[:, N_MODALITY_EMBS:])], dim=1)
    mask = torch.ones(rows, s.prefix.shape[1] + ids.shape[1], dtype=torch.long)
    keep = s.answers.shape[1] if with_answer else 1
    return c.lm(inputs_embeds=embeds, past_key_values=cache, attention_mask=mask, use_cache=True,
                logits_to_keep=keep).logits  # fmt: skip


def _loss(c: engine.Components, s: ModalitySet, index: torch.Tensor, scale) -> torch.Tensor:
    logits = _logits(c, s, index, scale, with_answer=True)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), s.answers[index].reshape(-1))


def _first_token_accuracy(c: engine.Components, s: ModalitySet, scale) -> float:
    c.lm.eval(), c.projector.eval()
    with torch.inference_mode():
        first = _logits(c, s, torch.arange(len(s.features)), scale, with_answer=False)[:, -1].argmax(-1)
    c.lm.train(), c.projector.train()
    return (first == s.answers[:, 0]).float().mean().item()


def _fold_standardisation(c: engine.Components, scales: dict) -> None:
    """projector(W1 (x − μ)/σ + b1) = projector(W1' x + b1') with W1' = W1 / σ, b1' = b1 − W1' μ."""
    with torch.no_grad():
        for kind, (mean, std) in scales.items():
            layer = c.projector[kind].linear_projection_1
            layer.weight.div_(std)
            layer.bias.sub_(layer.weight @ mean)


def _snapshot(c: engine.Components, step: int) -> Snapshot:
    lm = {name: p.detach().clone() for name, p in c.lm.named_parameters() if p.requires_grad}
    return Snapshot(step, lm, {name: t.detach().clone() for name, t in c.projector.state_dict().items()})


def _restore(c: engine.Components, snapshot: Snapshot) -> None:
    with torch.no_grad():
        for name, p in c.lm.named_parameters():
            if p.requires_grad:
                p.copy_(snapshot.lm[name])
    c.projector.load_state_dict(snapshot.projector)


def _series(c: engine.Components, out_dir: Path, spec: S3Spec, base: Path, grid: SnapshotGrid, final: Snapshot,
            held_out: dict, scales: dict) -> list[Path]:  # fmt: skip
    """The checkpoint series (``tasks.sanity.steps``), once the final release is saved: the model's weights are
    overwritten by each snapshot in turn."""
    before = [snapshot for snapshot in grid.kept if snapshot.step < final.step]
    for snapshot in before:
        _restore(c, snapshot)
        snapshot.accuracy = {kind: _first_token_accuracy(c, s, scales[kind]) for kind, s in held_out.items()}

    def save(snapshot: Snapshot, checkpoint: Path) -> None:
        _restore(c, snapshot)
        _fold_standardisation(c, scales)  # as the final release's projector
        adapter, projector = (checkpoint / p.relative_to(spec.checkpoint) for p in (spec.adapter, spec.projector))
        save_adapter(c.lm, adapter, base)
        projector.parent.mkdir(parents=True, exist_ok=True)
        torch.save(c.projector.state_dict(), projector)

    chosen = choose(before, final, {kind: s.chance for kind, s in held_out.items()})
    return write_series(out_dir / SERIES, spec.checkpoint, chosen, [*before, final], save)


def _engine_accuracy(c: engine.Components, s: ModalitySet) -> float:
    """Held-out accuracy through the inference engine: greedy generation, raw features spliced as at run time."""
    c.lm.eval(), c.projector.eval()
    right = 0
    with torch.inference_mode():
        for p, feature in zip(s.prepared, s.features):
            c.cache.put(p.media_hashes[0], feature)
        letters = [c.tokenizer.decode(a[:1]) for a in s.answers.tolist()]
        for start in range(0, len(s.prepared), 64):
            texts = engine.generate(c, s.prepared[start : start + 64], 2)
            right += sum(t.strip()[:1] == gold for t, gold in zip(texts, letters[start : start + 64]))
    return right / len(s.prepared)


def train(out_dir: Path, seed: int = 0, max_steps: int = MAX_STEPS, log: Optional[Callable[[str], None]] = _stderr,
          progress: bool = True) -> tuple[Path, Path]:  # fmt: skip
    """Build the tiny release (``seed``) into ``out_dir`` and train it; ``log`` gets a line at the start, one before
    the media are encoded and one at the end, and a progress bar (stderr) follows the steps unless ``progress`` is
    false."""
    from tqdm import tqdm

    from s3eval.threads import ensure_threads

    ensure_threads()  # the CLI or the tests may have chosen already; otherwise the default rule
    log = log or (lambda message: None)
    t0 = time.perf_counter()
    log(f"sanity checkpoint: building the tiny release and training it (≈ {EXPECTED_SECONDS} s on 2 idle cores)…")
    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    checkpoint, base = build_tiny_release(out_dir, seed)
    (out_dir / COMPLETE_MARK).unlink()  # not complete until trained
    c, spec = _components(checkpoint, base)
    n_train, n_held = sum(TRAIN_SIZES.values()), sum(HELD_OUT_SIZES.values())
    log(f"sanity checkpoint: encoding {n_train} training and {n_held} held-out images and sounds with the frozen "
        f"ImageBind (once)…")  # fmt: skip
    train_sets = {kind: _encode(c, kind, n, TRAIN_SEED, "train") for kind, n in TRAIN_SIZES.items()}
    held_out = {kind: _encode(c, kind, n, TRAIN_SEED + 10, "heldout") for kind, n in HELD_OUT_SIZES.items()}
    scales = {kind: (s.features.mean(0), s.features.std(0).clamp_min(1e-6)) for kind, s in train_sets.items()}
    params = [p for p in c.lm.parameters() if p.requires_grad] + list(c.projector.parameters())
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)
    # Cosine decay: late steps at a high rate made held-out audio accuracy swing by ten points.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_steps)
    generator = torch.Generator().manual_seed(seed)
    c.lm.train(), c.projector.train()
    accuracy = {kind: 0.0 for kind in held_out}
    bar = tqdm(total=max_steps, unit="step",
               desc=f"training the built-in sanity checkpoint (first use only, ≈ {EXPECTED_SECONDS} s)",
               file=sys.stderr, disable=not progress, mininterval=0.5, leave=False)  # fmt: skip
    step, evaluated_at = 0, None
    grid = SnapshotGrid()
    grid.add(_snapshot(c, 0))
    with bar:
        for step in range(1, max_steps + 1):
            loss = sum(_loss(c, s, torch.randperm(len(s.features), generator=generator)[:BATCH], scales[kind])
                       for kind, s in train_sets.items())  # fmt: skip
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            if grid.wants(step):
                grid.add(_snapshot(c, step))
            if step % EVAL_EVERY == 0:
                accuracy = {kind: _first_token_accuracy(c, s, scales[kind]) for kind, s in held_out.items()}
                evaluated_at = step
                bar.set_postfix(loss=f"{loss.item():.3f}", **{f"held-out {k}": f"{v:.2f}" for k, v in accuracy.items()})
                if min(accuracy.values()) >= STOP_ACCURACY:
                    break
    if evaluated_at != step:
        accuracy = {kind: _first_token_accuracy(c, s, scales[kind]) for kind, s in held_out.items()}
    final = Snapshot(step, {}, {}, accuracy)  # its files are the release's
    _fold_standardisation(c, scales)
    accuracy = {kind: _engine_accuracy(c, s) for kind, s in held_out.items()}
    if min(accuracy.values()) < TARGET_ACCURACY:
        raise RuntimeError(f"sanity training reached only {accuracy} held-out accuracy in {step} steps")
    save_adapter(c.lm, spec.adapter, base)
    torch.save(c.projector.state_dict(), spec.projector)
    series = _series(c, out_dir, spec, base, grid, final, held_out, scales)
    seconds = time.perf_counter() - t0
    record = {"seed": seed, "trained": "sanity", "steps": step, "seconds": round(seconds, 1),
              "held_out_accuracy": accuracy}  # fmt: skip
    (out_dir / COMPLETE_MARK).write_text(json.dumps(record))
    log(f"sanity checkpoint: trained in {step} steps, {seconds:.0f} s; held-out accuracy "
        + ", ".join(f"{kind} {value:.2f}" for kind, value in accuracy.items())
        + f"; checkpoints at steps {', '.join(p.name.split('-')[-1] for p in series)} kept for sweeps")
    return checkpoint, base


def cache_entry():
    """The sanity release's entry in the user cache: keyed by the source of everything that makes it."""
    from s3eval.cache import Entry
    from s3eval.models.s3.builder import cache_entry as tiny_entry

    tiny = tiny_entry(0)
    modules = (*tiny.modules, "tasks.sanity.checkpoint", "tasks.sanity.steps", "tasks.sanity.data",
               "tasks.mmmu.prompts", "s3eval.models.s3.engine", "s3eval.models.s3.prompt",
               "s3eval.models.s3.encoders")  # fmt: skip
    return Entry("releases", "sanity", modules, tiny.packages, {"seed": 0})


def trained_folder(directory: Optional[Path] = None) -> Path:
    """The folder of the trained sanity release (``s3``, ``base``, the checkpoint series ``steps``), trained on
    first use: ``directory`` when given, else its entry of the user cache."""
    if directory is not None:
        ensure_release(directory, train)
        return Path(directory)
    from s3eval.cache import ensure, is_complete

    entry = cache_entry()
    cached = is_complete(entry.path)
    folder = ensure(entry, train)
    if not cached:
        _stderr(f"sanity checkpoint: saved in {folder} (`s3eval cache info` lists the cache)")
    return folder


def ensure_sanity(directory: Optional[Path] = None) -> tuple[Path, Path]:
    """The trained sanity release (checkpoint, base), trained on first use: in ``directory`` when given, else in
    its entry of the user cache."""
    folder = trained_folder(directory)
    return folder / "s3", folder / "base"


if __name__ == "__main__":
    from s3eval.threads import apply_threads

    apply_threads(None)
    release_main("Train the tiny sanity S³ release.", lambda out, seed: train(out, seed))
