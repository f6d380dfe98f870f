"""The S³ projector: one ``ModalityAdapter`` per modality mapping a unit-norm encoder vector to
``N_MODALITY_EMBS`` LLM input vectors."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from .prompt import N_MODALITY_EMBS

MODALITIES = ("image", "audio")
KEYS = ("linear_projection_1.weight", "linear_projection_1.bias", "linear_projection_2.weight", "linear_projection_2.bias")


class ModalityAdapter(nn.Module):
    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.linear_projection_1 = nn.Linear(in_dim, hidden_dim)
        self.linear_projection_2 = nn.Linear(hidden_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        # The released class builds a ReLU and never applies it: the trained projector is affine. Kept unused
        # on purpose; "fixing" it would change every output.
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.linear_projection_2(self.dropout(self.linear_projection_1(x))))


def expected_keys() -> set[str]:
    return {f"{m}.{k}" for m in MODALITIES for k in KEYS}


def build_projector(state_dict: Mapping[str, torch.Tensor]) -> nn.ModuleDict:
    """A projector shaped after ``state_dict`` (already validated), with those weights loaded strictly."""
    modules = nn.ModuleDict()
    for modality in MODALITIES:
        hidden, in_dim = state_dict[f"{modality}.linear_projection_1.weight"].shape
        out_dim = state_dict[f"{modality}.linear_projection_2.weight"].shape[0]
        modules[modality] = ModalityAdapter(in_dim, hidden, out_dim)
    modules.load_state_dict(dict(state_dict), strict=True)
    return modules.eval()


def project(projector: nn.ModuleDict, kind: str, features: torch.Tensor, lm_hidden: int) -> torch.Tensor:
    """(n, encoder_dim) → (n, N_MODALITY_EMBS, lm_hidden)."""
    return projector[kind](features).reshape(features.shape[0], N_MODALITY_EMBS, lm_hidden)
