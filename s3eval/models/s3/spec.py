"""Where the parts of an S³ release live. Defaults follow the released layout, so ``checkpoint`` and ``base``
are enough:

    <checkpoint>/tokenizer/                           slow Llama tokenizer + 8 added tokens
    <checkpoint>/language_model/                      peft LoRA adapter (embed_tokens, lm_head saved in full)
    <checkpoint>/projections/modality_adapters.pt     projector state dict (image.*, audio.*)
    <checkpoint>/imagebind/imagebing_huge.pth         ImageBind-huge state dict (the release's file name)
    <base>/                                           Mistral-7B-v0.1 in Hugging Face format

An ImageBind weights file with an ``imagebind_config.json`` beside it is built as ``ImageBindModel(**config)``
(the tiny test encoders); without one it is ``imagebind_huge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ...config import parse_flag
from ...registry import Registry
from ..base import ModelError
from .prompt import NOTEBOOK_SYSTEM_PROMPT

BUILTIN_TINY = "builtin:tiny"

# Built-in releases, built on first use into the user cache (s3eval.cache: <cache root>/releases/<name>-<key>):
# "tiny" (random weights) here; task plugins register others (e.g. a checkpoint trained on their data) with
# register_builtin_checkpoint.
_BUILTINS: Registry[Callable[[], tuple[Path, Path]]] = Registry("built-in checkpoint")
_BUILTINS.register("tiny", "s3eval.models.s3.builder:ensure_builtin")


def register_builtin_checkpoint(name: str, ensure: str) -> None:
    """``ensure`` ("module:function"), called with no arguments, builds the release into its cache entry if needed
    and returns (checkpoint, base)."""
    _BUILTINS.register(name, ensure)


# Built-in checkpoint series for ``s3eval sweep builtin:NAME`` (e.g. a training run's intermediate checkpoints),
# registered by task plugins like built-in checkpoints.
_BUILTIN_SWEEPS: Registry[Callable[[], tuple[list[Path], Path]]] = Registry("built-in checkpoint series")


def register_builtin_sweep(name: str, ensure: str) -> None:
    """``ensure`` ("module:function"), called with no arguments, builds the series into its cache entry if needed and
    returns (checkpoint folders in step order, each named ``checkpoint-STEP``, and the base they share)."""
    _BUILTIN_SWEEPS.register(name, ensure)


def resolve_builtin_sweep(spec: str) -> tuple[list[Path], Path]:
    from ...task_registry import discover

    discover()
    return _BUILTIN_SWEEPS.get(spec.split(":", 1)[1])()


def resolve_builtin(spec: str) -> tuple[Path, Path]:
    from ...task_registry import discover

    discover()  # task plugins may register built-in checkpoints
    name = spec.split(":", 1)[1]
    return _BUILTINS.get(name)()

ARGUMENTS = {
    "checkpoint": f"S³ release folder (released layout), or builtin:NAME built on first use: {BUILTIN_TINY} "
    "(default; random weights) or builtin:sanity (trained on the sanity sets)",
    "base": "base Mistral-7B-v0.1 folder in Hugging Face format (default for builtin:tiny: its own base)",
    "tokenizer": "tokenizer folder (default <checkpoint>/tokenizer)",
    "adapter": "LoRA adapter folder (default <checkpoint>/language_model)",
    "projector": "projector file (default <checkpoint>/projections/modality_adapters.pt)",
    "imagebind": "ImageBind weights (default <checkpoint>/imagebind/imagebing_huge.pth)",
    "dtype": "LLM dtype: bfloat16 (default on GPU), float32 (default on CPU) or float16",
    "encoder_dtype": "ImageBind dtype (default float32, as released)",
    "device": "torch device, e.g. cuda:0 or cpu (default: cuda if available)",
    "merge_lora": "true: merge the LoRA weights into the base after loading (faster; not bit-identical)",
    "system_prompt": "system prompt (default: the released notebook's)",
    "max_new_tokens": "default generation budget (32, as released) when the task sets none",
    "empty_fallback": "true: answer the contest's 'I can't answer that question' when the output is empty",
    "feature_cache": "folder to persist ImageBind features in (default: in memory only)",
}


@dataclass(frozen=True)
class S3Spec:
    checkpoint: Path
    base: Path
    tokenizer: Path
    adapter: Path
    projector: Path
    imagebind: Path
    dtype: Optional[str] = None
    encoder_dtype: str = "float32"
    device: Optional[str] = None
    merge_lora: bool = False
    system_prompt: str = NOTEBOOK_SYSTEM_PROMPT
    max_new_tokens: int = 32
    empty_fallback: bool = False
    feature_cache: Optional[Path] = None

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "S3Spec":
        checkpoint_arg = str(args.get("checkpoint") or BUILTIN_TINY)
        base_arg = args.get("base")
        if checkpoint_arg.startswith("builtin:"):
            checkpoint, built_base = resolve_builtin(checkpoint_arg)
            base = Path(base_arg) if base_arg else built_base
        else:
            checkpoint = Path(checkpoint_arg).expanduser()
            if not base_arg:
                raise ModelError("model 's3' needs --base DIR: the Mistral-7B-v0.1 folder the adapter was trained on")
            base = Path(base_arg).expanduser()

        def part(name: str, default: str) -> Path:
            return Path(args[name]).expanduser() if args.get(name) else checkpoint / default

        for name in ("dtype", "encoder_dtype"):
            if args.get(name) not in (None, "float32", "bfloat16", "float16"):
                raise ModelError(f"{name} must be float32, bfloat16 or float16, got {args[name]!r}")
        budget = int(args.get("max_new_tokens", 32))
        if budget < 1:
            raise ModelError(f"max_new_tokens must be positive, got {budget}")
        return cls(
            checkpoint=checkpoint,
            base=base,
            tokenizer=part("tokenizer", "tokenizer"),
            adapter=part("adapter", "language_model"),
            projector=part("projector", "projections/modality_adapters.pt"),
            imagebind=part("imagebind", "imagebind/imagebing_huge.pth"),
            dtype=args.get("dtype"),
            encoder_dtype=args.get("encoder_dtype") or "float32",
            device=args.get("device"),
            merge_lora=parse_flag(args.get("merge_lora", False), "model argument merge_lora", ModelError),
            system_prompt=str(args.get("system_prompt", NOTEBOOK_SYSTEM_PROMPT)),
            max_new_tokens=budget,
            empty_fallback=parse_flag(args.get("empty_fallback", False), "model argument empty_fallback", ModelError),
            feature_cache=Path(args["feature_cache"]).expanduser() if args.get("feature_cache") else None,
        )
