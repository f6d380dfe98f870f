"""Loading a validated S³ release: base Mistral (vocabulary resized to the tokenizer's 32008 before the adapter
is applied, as the released code does), the peft LoRA adapter with its full embed_tokens/lm_head copies,
optional LoRA merge, ImageBind and the projector."""

from __future__ import annotations

import itertools
from dataclasses import replace

import torch

from ...provenance import tree_fingerprint
from ...threads import ensure_threads
from ..base import ModelError
from .encoders import PREPROCESSING_VERSION, MediaEncoder, build_imagebind
from .engine import Components
from .feature_cache import FeatureCache
from .projector import build_projector
from .spec import S3Spec
from .validate import ReleaseFacts

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(spec: S3Spec) -> torch.device:
    return torch.device(spec.device or ("cuda" if torch.cuda.is_available() else "cpu"))


def resolve_dtype(spec: S3Spec, device: torch.device) -> str:
    """bf16 on GPU, fp32 on CPU unless the spec says otherwise."""
    return spec.dtype or ("bfloat16" if device.type == "cuda" else "float32")


def encoder_identity(spec: S3Spec, encoder_dtype: str) -> str:
    """What makes two ImageBind features interchangeable: the weights, the preprocessing and the dtype."""
    return tree_fingerprint([spec.imagebind]) + f"-{PREPROCESSING_VERSION}-{encoder_dtype}"


def _encoder(spec: S3Spec, facts: ReleaseFacts, device: torch.device) -> tuple[MediaEncoder, FeatureCache]:
    encoder = MediaEncoder(build_imagebind(str(spec.imagebind), facts.imagebind_config), device, DTYPES[spec.encoder_dtype])
    return encoder, FeatureCache(encoder_identity(spec, spec.encoder_dtype), spec.feature_cache)


def load_components(spec: S3Spec, facts: ReleaseFacts) -> Components:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ensure_threads()  # torch's thread count, as the run chose (s3eval.threads)

    device = resolve_device(spec)
    dtype = DTYPES[resolve_dtype(spec, device)]
    tokenizer = facts.tokenizer
    lm = AutoModelForCausalLM.from_pretrained(str(spec.base), dtype=dtype)
    # New rows are overwritten by the adapter's full embed_tokens/lm_head copies; no random init needed.
    lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    lm = PeftModel.from_pretrained(lm, str(spec.adapter))
    if spec.merge_lora:
        lm = lm.merge_and_unload()
    lm = lm.to(device).eval()

    projector_state = torch.load(spec.projector, map_location="cpu", weights_only=True)
    projector = build_projector(projector_state).to(device=device, dtype=dtype)
    encoder, cache = _encoder(spec, facts, device)
    return Components(
        tokenizer=tokenizer,
        lm=lm,
        projector=projector,
        encoder=encoder,
        cache=cache,
        media_token_ids=facts.media_token_ids,
        eos_id=facts.eos_id,  # type: ignore[arg-type]
        pad_id=facts.pad_id,  # type: ignore[arg-type]
        lm_hidden=facts.lm_hidden,  # type: ignore[arg-type]
        device=device,
        dtype=dtype,
        system_prompt=spec.system_prompt,
        context_length=facts.context_length,
    )


_SWAPS = itertools.count(1)  # adapter names in the peft model: unique per process


def swap_checkpoint(c: Components, spec: S3Spec, facts: ReleaseFacts) -> Components:
    """``c`` with another checkpoint of the same base: its tokenizer, LoRA adapter (with its full embed_tokens/lm_head
    copies) and projector loaded in place of the old ones, the base weights untouched. ImageBind and its feature cache
    are kept when the checkpoint's encoder is the same file content (it is frozen in training), else loaded anew.
    The old checkpoint's adapter is deleted from the model: ``c`` must not be used afterwards."""
    lm = c.lm
    if spec.merge_lora or not hasattr(lm, "load_adapter"):
        raise ModelError("a merged model cannot swap adapters: load it without merge_lora")
    if len(facts.tokenizer) != lm.get_input_embeddings().weight.shape[0]:
        raise ModelError(f"tokenizer of {spec.checkpoint} has {len(facts.tokenizer)} tokens, the loaded model "
                         f"{lm.get_input_embeddings().weight.shape[0]}: it cannot share the sweep's base; evaluate it "
                         f"with s3eval run")  # fmt: skip
    old_name = lm.active_adapter
    name = f"swapped-{next(_SWAPS)}"
    lm.load_adapter(str(spec.adapter), adapter_name=name)
    lm.set_adapter(name)
    lm.delete_adapter(old_name)
    lm.to(c.device).eval()
    projector_state = torch.load(spec.projector, map_location="cpu", weights_only=True)
    projector = build_projector(projector_state).to(device=c.device, dtype=c.dtype)
    encoder, cache = c.encoder, c.cache
    if encoder_identity(spec, spec.encoder_dtype) != c.cache.encoder_id:
        encoder, cache = _encoder(spec, facts, c.device)
    return replace(c, tokenizer=facts.tokenizer, lm=lm, projector=projector, encoder=encoder, cache=cache,
                   media_token_ids=facts.media_token_ids, eos_id=facts.eos_id, pad_id=facts.pad_id,
                   system_prompt=spec.system_prompt)  # fmt: skip
