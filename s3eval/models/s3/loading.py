"""Loading a validated S³ release: base Mistral (vocabulary resized to the tokenizer's 32008 before the adapter
is applied, as the released code does), the peft LoRA adapter with its full embed_tokens/lm_head copies,
optional LoRA merge, ImageBind and the projector."""

from __future__ import annotations

import torch

from ...provenance import tree_fingerprint
from ...threads import ensure_threads
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
    encoder = MediaEncoder(build_imagebind(str(spec.imagebind), facts.imagebind_config), device, DTYPES[spec.encoder_dtype])
    return Components(
        tokenizer=tokenizer,
        lm=lm,
        projector=projector,
        encoder=encoder,
        cache=FeatureCache(encoder_identity(spec, spec.encoder_dtype), spec.feature_cache),
        media_token_ids=facts.media_token_ids,
        eos_id=facts.eos_id,  # type: ignore[arg-type]
        pad_id=facts.pad_id,  # type: ignore[arg-type]
        lm_hidden=facts.lm_hidden,  # type: ignore[arg-type]
        device=device,
        dtype=dtype,
        system_prompt=spec.system_prompt,
        context_length=facts.context_length,
    )
