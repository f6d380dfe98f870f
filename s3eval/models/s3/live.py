"""S³ around a training process's own modules (``s3eval.evaluate`` in a training loop): the language model, the
projector, ImageBind and the tokenizer are used as they are, on their device and in their dtype — nothing is loaded
or copied. Each evaluation names its responses by a fingerprint of the weights training changes (the LoRA weights,
the adapter's full embed_tokens/lm_head copies, the projector), so responses are never reused across different
weights, and the modules are put in eval mode for the evaluation and back as they were after it."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

from ..base import BatchSize, ModelError, ModelIdentity
from .engine import Components
from .feature_cache import FeatureCache
from .model import S3Model
from .prompt import NOTEBOOK_SYSTEM_PROMPT
from .spec import S3Spec
from .validate import ReleaseFacts, token_facts

IN_PROCESS = Path("<in-process>")
# peft's names for what S³ training changes; the base Mistral is frozen.
_TRAINED = ("lora_", "modules_to_save")


def weights_fingerprint(lm: torch.nn.Module, projector: torch.nn.Module) -> str:
    """sha256 over the names, shapes, dtypes and bytes of the trained tensors: the LoRA weights and full copies
    peft keeps for training (by peft's parameter names) and the whole projector."""
    digest = hashlib.sha256()
    named = [(n, p) for n, p in lm.named_parameters() if any(mark in n for mark in _TRAINED)]
    named += [(f"projector.{n}", p) for n, p in projector.named_parameters()]
    for name, tensor in named:
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}\0".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


class LiveS3Model(S3Model):
    """An ``S3Model`` whose components are the caller's modules (build it with ``wrap``)."""

    @classmethod
    def wrap(cls, *, lm: torch.nn.Module, projector: torch.nn.Module, tokenizer: Any, imagebind: torch.nn.Module,
             name: str = "s3-live", system_prompt: str = NOTEBOOK_SYSTEM_PROMPT, max_new_tokens: int = 32,
             batch_size: BatchSize = None) -> "LiveS3Model":  # fmt: skip
        """``lm``: the (peft) Mistral with S³'s 32008-token vocabulary; ``projector``: the modality adapters
        (``image``/``audio``); ``imagebind``: the ImageBind model (frozen: its features are cached for the model's
        life); ``tokenizer``: S³'s slow tokenizer."""
        facts, problems = ReleaseFacts(), []
        token_facts(tokenizer, facts, problems, "the tokenizer given")
        config = getattr(lm, "config", None)
        if config is None or not hasattr(config, "hidden_size"):
            problems.append("lm: not a transformers language model (it has no config.hidden_size)")
        elif lm.get_input_embeddings().weight.shape[0] != len(tokenizer):
            problems.append(f"lm: its vocabulary has {lm.get_input_embeddings().weight.shape[0]} rows, the tokenizer "
                            f"{len(tokenizer)} tokens; resize the model's embeddings to the tokenizer")  # fmt: skip
        if problems:
            raise ModelError("cannot evaluate these modules: " + "; ".join(problems))
        first = next(lm.parameters())
        device, dtype = first.device, first.dtype
        from .encoders import MediaEncoder

        # Where and how the caller keeps ImageBind, so that wrapping moves and casts nothing.
        encoder_at = next(imagebind.parameters())
        components = Components(
            tokenizer=tokenizer, lm=lm, projector=projector,
            encoder=MediaEncoder(imagebind, encoder_at.device, encoder_at.dtype),
            # ImageBind is frozen: one feature per media item for the wrapper's life (in memory: nothing on disk
            # could tell this process's ImageBind from another's).
            cache=FeatureCache(f"in-process-{encoder_at.dtype}"),
            media_token_ids=facts.media_token_ids, eos_id=facts.eos_id, pad_id=facts.pad_id,  # type: ignore[arg-type]
            lm_hidden=config.hidden_size, device=device, dtype=dtype, system_prompt=system_prompt,
            context_length=getattr(config, "max_position_embeddings", None),
        )  # fmt: skip
        spec = S3Spec(checkpoint=IN_PROCESS, base=IN_PROCESS, tokenizer=IN_PROCESS, adapter=IN_PROCESS,
                      projector=IN_PROCESS, imagebind=IN_PROCESS, system_prompt=system_prompt,
                      max_new_tokens=max_new_tokens)  # fmt: skip
        model = cls.__new__(cls)
        model._start(spec, batch_size, device, components)
        model.name = name
        model.facts = facts
        model.refresh()
        return model

    def refresh(self, step: Optional[int] = None) -> ModelIdentity:
        """The identity of the weights as they are now (call before each evaluation: training changed them)."""
        c = self.components
        self.identity = ModelIdentity(
            name=self.name,
            checkpoint=f"in-process{'' if step is None else f' step {step}'}",
            checkpoint_hash=weights_fingerprint(c.lm, c.projector),
            details={"device": str(c.device), "dtype": str(c.dtype).replace("torch.", ""), "step": step,
                     "token_encodings": self.facts.token_encodings, "eos_id": c.eos_id, "pad_id": c.pad_id},
        )  # fmt: skip
        return self.identity

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (no dropout) for the evaluation; each module's own mode again after it, even on error."""
        c = self.components
        modules = [c.lm, c.projector, c.encoder.model]
        modes = [[(m, m.training) for m in module.modules()] for module in modules]
        try:
            for module in modules:
                module.eval()
            yield
        finally:
            for saved in modes:
                for m, training in saved:
                    m.train(training)
