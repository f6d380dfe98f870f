"""Builds a complete tiny S³ release in the released layout, deterministically from a seed: a tiny Mistral base
in Hugging Face format, a peft LoRA adapter (r = 8 on q/v, embed_tokens and lm_head saved in full), the real
Mistral-7B-v0.1 SentencePiece model (shipped in `mistral-common`) plus the 8 added tokens, a tiny ImageBind
(the same `ImageBindModel` class) with its `imagebind_config.json`, and the projector state dict.

Which eight of the nine prompt strings the real tokenizer adds is not known (see the reference notes); this
builder adds all but ``<system>``, which therefore tokenises as text. Nothing in the loader depends on that
choice: it records how the tokenizer encodes every prompt string.

    python -m s3eval.models.s3.builder OUT_DIR [--seed 0]   →   OUT_DIR/s3 (checkpoint), OUT_DIR/base
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable, Optional

import torch

ADDED_TOKENS = ("<RS>", "</RS>", "<user>", "<bot>", "<MS>", "</MS>", "<img>", "<audio>")
TINY_LM = dict(
    vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=4096, sliding_window=4096, rms_norm_eps=1e-5,
    bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
)  # fmt: skip
TINY_IMAGEBIND = {
    **{f"{m}_{k}": v for m in ("vision", "text", "audio", "depth", "thermal", "imu")
       for k, v in (("embed_dim", 32), ("num_blocks", 2), ("num_heads", 2))},
    "out_embed_dim": 16,
}  # fmt: skip
PROJECTOR_HIDDEN = 64
COMPLETE_MARK = ".complete"


def mistral_tokenizer_model() -> Path:
    """The Mistral-7B-v0.1 `tokenizer.model` (sha256 dadfd56d…) that `mistral-common` ships."""
    return Path(str(resources.files("mistral_common") / "data" / "tokenizer.model.v1"))


def build_tokenizer(out: Path) -> None:
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(mistral_tokenizer_model(), Path(tmp) / "tokenizer.model")
        config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False, "legacy": True}
        (Path(tmp) / "tokenizer_config.json").write_text(json.dumps(config))
        tokenizer = AutoTokenizer.from_pretrained(tmp, use_fast=False)
    tokenizer.add_special_tokens({"additional_special_tokens": list(ADDED_TOKENS)})
    tokenizer.pad_token = tokenizer.unk_token  # as turbo-alignment does; masked anyway
    tokenizer.save_pretrained(str(out))


def build_base(out: Path, seed: int) -> None:
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    MistralForCausalLM(MistralConfig(**TINY_LM)).save_pretrained(str(out), safe_serialization=True)


def build_adapter(base: Path, out: Path, n_tokens: int, seed: int) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base))
    model.resize_token_embeddings(n_tokens, mean_resizing=False)
    config = LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
        modules_to_save=["embed_tokens", "lm_head"], task_type="CAUSAL_LM",
    )  # fmt: skip
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            # Non-zero LoRA B and distinct trained copies, so that the adapter really changes the outputs.
            if "lora_B" in name or "modules_to_save" in name:
                param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    save_adapter(peft_model, out, base)


def save_adapter(peft_model, out: Path, base: Path) -> None:
    """Save a peft adapter as a release would: base named "mistralai/Mistral-7B-v0.1", no model card.
    peft is pointed at the local base while saving, because it would otherwise look the name up on the hub."""
    peft_model.peft_config["default"].base_model_name_or_path = str(base)
    peft_model.save_pretrained(str(out), safe_serialization=True)
    config_path = Path(out) / "adapter_config.json"
    saved = json.loads(config_path.read_text())
    saved["base_model_name_or_path"] = "mistralai/Mistral-7B-v0.1"
    saved["target_modules"] = sorted(saved["target_modules"])  # peft writes a set, in hash order
    config_path.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    (Path(out) / "README.md").unlink(missing_ok=True)  # peft's model card names the local base path


def build_imagebind(out: Path, seed: int) -> None:
    from .encoders import import_imagebind

    _, imagebind_model = import_imagebind()
    torch.manual_seed(seed + 2)
    model = imagebind_model.ImageBindModel(**TINY_IMAGEBIND)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "imagebing_huge.pth")
    (out / "imagebind_config.json").write_text(json.dumps(TINY_IMAGEBIND, indent=1, sort_keys=True))


def build_projector_file(out: Path, seed: int) -> None:
    from torch import nn

    from .projector import MODALITIES, ModalityAdapter

    torch.manual_seed(seed + 3)
    hidden = TINY_LM["hidden_size"]
    projector = nn.ModuleDict({m: ModalityAdapter(TINY_IMAGEBIND["out_embed_dim"], PROJECTOR_HIDDEN, 4 * hidden)
                               for m in MODALITIES})  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(projector.state_dict(), out)


def build_tiny_release(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Writes ``out_dir/s3`` (the checkpoint, released layout) and ``out_dir/base``; returns both."""
    out_dir = Path(out_dir)
    checkpoint, base = out_dir / "s3", out_dir / "base"
    build_tokenizer(checkpoint / "tokenizer")
    build_base(base, seed)
    build_adapter(base, checkpoint / "language_model", 32000 + len(ADDED_TOKENS), seed)
    build_imagebind(checkpoint / "imagebind", seed)
    build_projector_file(checkpoint / "projections" / "modality_adapters.pt", seed)
    (out_dir / COMPLETE_MARK).write_text(json.dumps({"seed": seed}))
    return checkpoint, base


def ensure_release(directory: Path, build: Callable[[Path], object]) -> tuple[Path, Path]:
    """The release in ``directory``, made by ``build(folder)`` on first use — into a temporary folder renamed into
    place, so an interrupted or concurrent build never leaves a half-written release."""
    directory = Path(directory)
    if not (directory / COMPLETE_MARK).is_file():
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
        try:
            build(tmp)
            try:
                os.rename(tmp, directory)
            except OSError:
                if not (directory / COMPLETE_MARK).is_file():  # not someone else's finished build
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return directory / "s3", directory / "base"


# Distributions whose code shapes a built release (weights initialisation, file formats, the tokenizer model).
RELEASE_PACKAGES = ("torch", "transformers", "peft", "safetensors", "tokenizers", "sentencepiece", "mistral-common",
                    "imagebind-unofficial", "numpy")  # fmt: skip


def cache_entry(seed: int = 0):
    """The tiny release's entry in the user cache (``s3eval.cache``): keyed by this builder's source and the
    modules and package versions that shape its files."""
    from ...cache import Entry

    modules = ("s3eval.models.s3.builder", "s3eval.models.s3.projector")
    return Entry("releases", "tiny" if seed == 0 else f"tiny-seed{seed}", modules, RELEASE_PACKAGES, {"seed": seed})


def ensure_builtin(directory: Optional[Path] = None, seed: int = 0) -> tuple[Path, Path]:
    """The built-in tiny release (random weights), built on first use: in ``directory`` when given, else in its
    entry of the user cache."""
    if directory is not None:
        return ensure_release(directory, lambda folder: build_tiny_release(folder, seed))
    from ...cache import ensure

    folder = ensure(cache_entry(seed), lambda tmp: build_tiny_release(tmp, seed))
    return folder / "s3", folder / "base"


def release_main(description: str, build: Callable[[Path, int], tuple[Path, Path]]) -> None:
    """Command line of a release maker: ``OUT_DIR [--seed N]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    checkpoint, base = build(args.out_dir, args.seed)
    print(f"checkpoint: {checkpoint}\nbase: {base}")


if __name__ == "__main__":
    release_main("Build a tiny S³ release in the released layout.", build_tiny_release)
