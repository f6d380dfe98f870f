"""Model backends, registered lazily by name so that importing s3eval never imports torch."""

from __future__ import annotations

from typing import Any, Mapping

from ..registry import Registry
from .base import Model, ModelError, ModelIdentity

MODELS: Registry[type[Model]] = Registry("model")
MODELS.register("constant", "s3eval.models.scripted:ConstantModel")
MODELS.register("replay", "s3eval.models.scripted:ReplayModel")
MODELS.register("s3", "s3eval.models.s3.model:S3Model")


def build_model(name: str, args: Mapping[str, Any]) -> Model:
    return MODELS.get(name).from_args(dict(args))


__all__ = ["MODELS", "Model", "ModelError", "ModelIdentity", "build_model"]
