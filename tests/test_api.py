"""The in-process API (s3eval.evaluate + LiveS3Model.wrap): a training process's own modules, loaded by the caller,
evaluated without a reload or a copy; the run directory `s3eval run` writes; responses reused only for the same
weights; the modules' train/eval modes restored."""

import json

import pytest
import torch

import s3eval
from s3eval.config import ConfigError
from s3eval.models.base import ModelError
from s3eval.results import TaskResult


@pytest.fixture
def training_modules(sanity_release):
    """What a training script holds: the peft model in train mode, the projector, ImageBind and the tokenizer,
    loaded by the script itself (not by s3eval)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from imagebind.models.imagebind_model import ImageBindModel

    checkpoint, base = sanity_release
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint / "tokenizer"), use_fast=False)
    lm = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    lm = PeftModel.from_pretrained(lm, str(checkpoint / "language_model"), is_trainable=True)
    from s3eval.models.s3.projector import build_projector

    projector = build_projector(torch.load(checkpoint / "projections" / "modality_adapters.pt", weights_only=True))
    config = json.loads((checkpoint / "imagebind" / "imagebind_config.json").read_text())
    imagebind = ImageBindModel(**config)
    imagebind.load_state_dict(torch.load(checkpoint / "imagebind" / "imagebing_huge.pth", weights_only=True))
    imagebind.eval()
    lm.train(), projector.train()
    return {"lm": lm, "projector": projector, "tokenizer": tokenizer, "imagebind": imagebind}


def test_evaluate_runs_the_callers_modules_in_place_and_writes_a_run_directory(training_modules, tmp_path):
    from s3eval.models.s3.live import LiveS3Model

    m = training_modules
    weight = m["lm"].get_input_embeddings().weight
    pointer = weight.data_ptr()
    model = LiveS3Model.wrap(name="trainer", **m)
    assert model.components.lm is m["lm"] and model.components.projector is m["projector"]

    outcome = s3eval.evaluate(model, ["sanity_image", {"name": "sanity_audio"}], tmp_path, step=100, limit=10)
    assert outcome.run_dir == tmp_path / "trainer-step-100"
    assert outcome.scores == {"sanity_image": 1.0, "sanity_audio": 1.0}
    assert all(isinstance(r, TaskResult) for r in outcome.tasks)
    written = json.loads((outcome.run_dir / "results.json").read_text())
    assert written["model"]["checkpoint"] == "in-process step 100"
    assert (outcome.run_dir / "samples_sanity_image.jsonl").is_file()
    assert m["lm"].training and m["projector"].training  # back in train mode
    assert not m["imagebind"].training
    assert m["lm"].get_input_embeddings().weight.data_ptr() == pointer  # nothing copied or moved

    again = s3eval.evaluate(model, ["sanity_image"], tmp_path, step=100, limit=10)
    assert again.resumed == {"sanity_image": (10, 10)}  # the same weights: every response reused
    with torch.no_grad():  # a training step changes the adapter
        for name, parameter in m["lm"].named_parameters():
            if "lora_B" in name:
                parameter.add_(1.0)
    changed = s3eval.evaluate(model, ["sanity_image"], tmp_path, step=100, limit=10)
    assert changed.resumed == {"sanity_image": (0, 10)}  # other weights: nothing reused


def test_evaluate_refuses_what_it_cannot_evaluate(training_modules, tmp_path):
    from s3eval.models.s3.live import LiveS3Model

    with pytest.raises(ConfigError, match="wrap training modules with"):
        s3eval.evaluate(training_modules["lm"], ["sanity_image"], tmp_path)
    model = LiveS3Model.wrap(**training_modules)
    with pytest.raises(ConfigError, match="no setting 'limt': did you mean 'limit'"):
        s3eval.evaluate(model, ["sanity_image"], tmp_path, limt=3)
    wrong = dict(training_modules, tokenizer=_Short(training_modules["tokenizer"]))
    with pytest.raises(ModelError, match="the tokenizer given: tokenizer has 32007 tokens"):
        LiveS3Model.wrap(**wrong)


class _Short:
    """A tokenizer one token short of S³'s."""

    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner) - 1

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args, **kwargs):
        return self.inner(*args, **kwargs)
