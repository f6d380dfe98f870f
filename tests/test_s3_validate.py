"""A corrupted release is reported before any weight is loaded, one line per problem naming file and fix."""

import json
import shutil

import pytest
import torch

from s3eval.models.base import ModelError
from s3eval.models.s3.model import S3Model
from s3eval.models.s3.spec import S3Spec


@pytest.fixture
def release(tiny_release, tmp_path):
    checkpoint, base = tiny_release
    shutil.copytree(checkpoint, tmp_path / "s3")
    shutil.copytree(base, tmp_path / "base")
    return tmp_path / "s3", tmp_path / "base"


def load(checkpoint, base, **args):
    return S3Model(S3Spec.from_args({"checkpoint": str(checkpoint), "base": str(base), **args}))


def problems(checkpoint, base):
    with pytest.raises(ModelError) as error:
        load(checkpoint, base)
    return str(error.value)


def test_good_release_validates_without_loading_weights(release):
    model = load(*release)
    assert model._components is None  # weights are loaded on first use only
    assert model.facts.media_token_ids == {"image": 32006, "audio": 32007}
    assert model.facts.eos_id == 32001 and model.facts.pad_id == 0
    assert model.identity.details["token_encodings"]["<system>"] == [523, 6574, 28767]


def test_missing_files(release):
    checkpoint, base = release
    (checkpoint / "projections" / "modality_adapters.pt").unlink()
    (checkpoint / "imagebind" / "imagebing_huge.pth").unlink()
    message = problems(checkpoint, base)
    assert "modality_adapters.pt: missing — the release ships it as projections/modality_adapters.pt" in message
    assert "imagebing_huge.pth: missing" in message


def test_wrong_projector_shape(release):
    checkpoint, base = release
    path = checkpoint / "projections" / "modality_adapters.pt"
    state = torch.load(path, weights_only=True)
    state["image.linear_projection_2.weight"] = torch.zeros(128, 64)
    state["image.linear_projection_2.bias"] = torch.zeros(128)
    torch.save(state, path)
    assert "image.linear_projection_2 is [128, 64], expected [256, 64]" in problems(checkpoint, base)


def test_corrupt_projector_file(release):
    checkpoint, base = release
    (checkpoint / "projections" / "modality_adapters.pt").write_bytes(b"not a zip")
    assert "modality_adapters.pt: not a torch.save (zip) file (it starts with b'not a zi')" in problems(checkpoint, base)


def test_wrong_vocabulary_size(release):
    checkpoint, base = release
    added = checkpoint / "tokenizer" / "added_tokens.json"
    tokens = json.loads(added.read_text())
    tokens.pop("<audio>")
    added.write_text(json.dumps(tokens))
    config = checkpoint / "tokenizer" / "tokenizer_config.json"
    data = json.loads(config.read_text())
    data["added_tokens_decoder"].pop("32007")
    data["additional_special_tokens"].remove("<audio>")
    config.write_text(json.dumps(data))
    (checkpoint / "tokenizer" / "special_tokens_map.json").unlink()
    message = problems(checkpoint, base)
    assert "tokenizer has 32007 tokens, S³ needs 32008" in message
    assert "<audio> encodes to" in message and "the released code requires one id" in message


def test_adapter_for_another_base(release, tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    from s3eval.models.s3.builder import TINY_LM

    checkpoint, _ = release
    other = tmp_path / "other_base"
    MistralForCausalLM(MistralConfig(**{**TINY_LM, "hidden_size": 96, "intermediate_size": 128})).save_pretrained(other)
    message = problems(checkpoint, other)
    assert "embed_tokens is [32008, 64], the base needs [32008, 96] — the adapter was trained on another base" in message
    assert "LoRA input width differs from the base hidden size 96" in message


def test_wrong_folders_and_missing_base():
    with pytest.raises(ModelError, match="needs --base DIR"):
        S3Spec.from_args({"checkpoint": "/nonexistent"})
    with pytest.raises(ModelError, match=r"/nonexistent: no such folder \(--checkpoint\)"):
        load("/nonexistent", "/nonexistent2")
    with pytest.raises(ModelError, match="has no argument 'chekpoint': did you mean 'checkpoint'"):
        S3Model.from_args({"chekpoint": "x"})
