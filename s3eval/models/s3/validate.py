"""Checks of an S³ release that cost seconds, run before any 7B weight is read. Every problem is reported
at once, each as one line naming the file and the fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ...storage import StorageError, read_json
from ..base import ModelError
from .projector import MODALITIES, expected_keys
from .prompt import MODALITY_TOKENS, N_MODALITY_EMBS, PROMPT_STRINGS
from .spec import S3Spec
from .weight_files import check_sentencepiece, check_weight_file

EXPECTED_TOKENIZER_LENGTH = 32008
_LORA_TARGETS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@dataclass
class ReleaseFacts:
    """What validation learned; the loader relies on it."""

    tokenizer: Any = None
    token_encodings: dict[str, list[int]] = field(default_factory=dict)
    media_token_ids: dict[str, int] = field(default_factory=dict)
    eos_id: Optional[int] = None
    pad_id: Optional[int] = None
    lm_hidden: Optional[int] = None
    base_vocab: Optional[int] = None
    encoder_dim: Optional[int] = None
    imagebind_config: Optional[dict] = None
    context_length: Optional[int] = None  # the base config's max_position_embeddings


def _read_json(path: Path, problems: list[str]) -> Optional[dict]:
    if not path.is_file():
        problems.append(f"{path}: missing")
        return None
    try:
        return read_json(path)
    except StorageError as exc:
        problems.append(f"{exc}; restore the file from the release")
        return None


def _check_base(spec: S3Spec, facts: ReleaseFacts, problems: list[str]) -> None:
    config = _read_json(spec.base / "config.json", problems)
    if config is None:
        problems[-1] += " — --base must be the Mistral-7B-v0.1 folder in Hugging Face format"
        return
    if config.get("model_type") != "mistral":
        problems.append(f"{spec.base / 'config.json'}: model_type is {config.get('model_type')!r}, expected 'mistral'")
    facts.lm_hidden, facts.base_vocab = config.get("hidden_size"), config.get("vocab_size")
    context = config.get("max_position_embeddings")
    if isinstance(context, int) and not isinstance(context, bool) and context > 0:
        facts.context_length = context
    weights = [p for p in spec.base.glob("*") if p.name.endswith((".safetensors", ".bin", ".safetensors.index.json"))]
    if not weights:
        problems.append(f"{spec.base}: no model weights (*.safetensors or pytorch_model*.bin); download the base model")
        return
    for path in _base_weight_files(spec.base, problems):
        problem = check_weight_file(path)
        if problem:
            problems.append(problem)


def _base_weight_files(base: Path, problems: list[str]) -> list[Path]:
    """The files transformers would load: the shards a ``*.index.json`` lists (safetensors preferred), else every
    ``*.safetensors`` (or, without any, ``pytorch_model*.bin``) in the folder. Missing shards are problems."""
    indexes = (("model.safetensors.index.json", "*.safetensors"), ("pytorch_model.bin.index.json", "*.bin"))
    for index_name, pattern in indexes:
        index = base / index_name
        if index.is_file():
            data = _read_json(index, problems)
            weight_map = data.get("weight_map") if isinstance(data, dict) else None
            if not isinstance(weight_map, dict) or not weight_map:
                if data is not None:
                    problems.append(f"{index}: no weight_map; restore the file from the base model")
                return []
            shards = [base / name for name in sorted(set(map(str, weight_map.values())))]
            for shard in shards:
                if not shard.is_file():
                    problems.append(f"{shard}: missing — {index.name} lists it; download the base model again")
            return [shard for shard in shards if shard.is_file()]
        files = sorted(base.glob(pattern))
        if files:
            return files
    return []


def _check_tokenizer(spec: S3Spec, facts: ReleaseFacts, problems: list[str]) -> None:
    if not (spec.tokenizer / "tokenizer.model").is_file():
        problems.append(f"{spec.tokenizer / 'tokenizer.model'}: missing — the release's tokenizer folder is needed")
        return
    problem = check_sentencepiece(spec.tokenizer / "tokenizer.model")
    if problem:
        problems.append(problem)
        return
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(spec.tokenizer), use_fast=False)
    except Exception as exc:  # transformers raises many types for broken tokenizer folders
        problems.append(f"{spec.tokenizer}: cannot load the slow tokenizer ({type(exc).__name__}: {exc})")
        return
    token_facts(tokenizer, facts, problems, str(spec.tokenizer))


def token_facts(tokenizer: Any, facts: ReleaseFacts, problems: list[str], where: str) -> None:
    """What S³ needs of its tokenizer (size, the media placeholders' single ids, the end-of-replica id), into
    ``facts``; what is wrong into ``problems``, each naming ``where`` the tokenizer came from."""
    facts.tokenizer = tokenizer
    if len(tokenizer) != EXPECTED_TOKENIZER_LENGTH:
        problems.append(
            f"{where}: tokenizer has {len(tokenizer)} tokens, S³ needs {EXPECTED_TOKENIZER_LENGTH} "
            f"(32000 + 8 added); is this the release's tokenizer folder?"
        )
    base_size = tokenizer.sp_model.get_piece_size() if hasattr(tokenizer, "sp_model") else 32000
    facts.token_encodings = {s: tokenizer(s, add_special_tokens=False).input_ids for s in PROMPT_STRINGS}
    for kind, token in MODALITY_TOKENS.items():
        ids = facts.token_encodings[token]
        if len(ids) != 1:  # the released code asserts this
            problems.append(f"{where}: {token} encodes to {ids}, the released code requires one id")
        else:
            facts.media_token_ids[kind] = ids[0]
    end = facts.token_encodings["</RS>"]
    if not end or end[0] < base_size:
        problems.append(f"{where}: </RS> encodes to {end}; its first id is the EOS and must be an added token")
    else:
        facts.eos_id = end[0]
    facts.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.unk_token_id


def _check_adapter(spec: S3Spec, facts: ReleaseFacts, problems: list[str]) -> None:
    config = _read_json(spec.adapter / "adapter_config.json", problems)
    if config is None:
        return
    if config.get("peft_type") != "LORA":
        problems.append(f"{spec.adapter / 'adapter_config.json'}: peft_type {config.get('peft_type')!r}, expected 'LORA'")
    targets = set(config.get("target_modules") or [])
    if not targets or not targets <= _LORA_TARGETS:
        problems.append(f"{spec.adapter / 'adapter_config.json'}: target_modules {sorted(targets)} are not Mistral modules")
    saved = set(config.get("modules_to_save") or [])
    if not {"embed_tokens", "lm_head"} <= saved:
        problems.append(f"{spec.adapter / 'adapter_config.json'}: modules_to_save {sorted(saved)} lacks embed_tokens/lm_head")
    files = [spec.adapter / "adapter_model.safetensors", spec.adapter / "adapter_model.bin"]
    weights = next((f for f in files if f.is_file()), None)
    if weights is None:
        problems.append(f"{spec.adapter}: no adapter_model.safetensors or adapter_model.bin")
        return
    problem = check_weight_file(weights)
    if problem:
        problems.append(problem)
        return
    shapes = _tensor_shapes(weights, problems)
    embed = [s for k, s in shapes.items() if k.endswith("embed_tokens.weight")]
    if not embed:
        problems.append(f"{weights}: no embed_tokens weights; the S³ adapter saves them in full")
    elif facts.lm_hidden is not None and tuple(embed[0]) != (EXPECTED_TOKENIZER_LENGTH, facts.lm_hidden):
        problems.append(
            f"{weights}: embed_tokens is {list(embed[0])}, the base needs [{EXPECTED_TOKENIZER_LENGTH}, "
            f"{facts.lm_hidden}] — the adapter was trained on another base model; check --base"
        )
    wrong = [k for k, s in shapes.items() if "lora_A" in k and facts.lm_hidden is not None and s[-1] != facts.lm_hidden]
    if wrong:
        problems.append(f"{weights}: LoRA input width differs from the base hidden size {facts.lm_hidden}; check --base")


def _tensor_shapes(path: Path, problems: list[str]) -> dict[str, tuple[int, ...]]:
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return {k: tuple(v.shape) for k, v in state.items()}
    except Exception as exc:  # corrupt files raise assorted errors
        problems.append(f"{path}: unreadable ({type(exc).__name__}: {exc}); restore the file from the release")
        return {}


def _check_imagebind(spec: S3Spec, facts: ReleaseFacts, problems: list[str]) -> None:
    if not spec.imagebind.is_file():
        problems.append(f"{spec.imagebind}: missing — the release ships it as imagebind/imagebing_huge.pth")
        return
    problem = check_weight_file(spec.imagebind)
    if problem:
        problems.append(problem)
    sidecar = spec.imagebind.parent / "imagebind_config.json"
    if sidecar.is_file():
        facts.imagebind_config = _read_json(sidecar, problems)
        facts.encoder_dim = (facts.imagebind_config or {}).get("out_embed_dim")
    else:
        facts.encoder_dim = 1024  # imagebind_huge


def _check_projector(spec: S3Spec, facts: ReleaseFacts, problems: list[str]) -> None:
    if not spec.projector.is_file():
        problems.append(f"{spec.projector}: missing — the release ships it as projections/modality_adapters.pt")
        return
    problem = check_weight_file(spec.projector)
    if problem:
        problems.append(problem)
        return
    shapes = _tensor_shapes(spec.projector, problems)
    if not shapes:
        return
    if set(shapes) != expected_keys():
        problems.append(f"{spec.projector}: keys {sorted(shapes)} differ from {sorted(expected_keys())}")
        return
    for modality in MODALITIES:
        w1 = shapes[f"{modality}.linear_projection_1.weight"]
        w2 = shapes[f"{modality}.linear_projection_2.weight"]
        if facts.encoder_dim is not None and w1[1] != facts.encoder_dim:
            problems.append(f"{spec.projector}: {modality} input width {w1[1]} != ImageBind output {facts.encoder_dim}")
        if facts.lm_hidden is not None and (w2[0] != N_MODALITY_EMBS * facts.lm_hidden or w2[1] != w1[0]):
            problems.append(
                f"{spec.projector}: {modality}.linear_projection_2 is {list(w2)}, expected "
                f"[{N_MODALITY_EMBS * facts.lm_hidden}, {w1[0]}] ({N_MODALITY_EMBS} vectors of the base hidden "
                f"size {facts.lm_hidden}); wrong projector or wrong base"
            )


def validate_release(spec: S3Spec) -> ReleaseFacts:
    problems: list[str] = []
    facts = ReleaseFacts()
    for folder, what in ((spec.checkpoint, "checkpoint"), (spec.base, "base")):
        if not folder.is_dir():
            problems.append(f"{folder}: no such folder (--{what})")
    if not problems:
        _check_base(spec, facts, problems)
        _check_tokenizer(spec, facts, problems)
        _check_adapter(spec, facts, problems)
        _check_imagebind(spec, facts, problems)
        _check_projector(spec, facts, problems)
    if problems:
        raise ModelError("invalid S³ release:\n  " + "\n  ".join(problems))
    return facts
