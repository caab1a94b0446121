"""A model: weights and tokenizer files, or a LoRA adapter on a base model."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from core.store import ArtifactKind
from hub.specs.base import Ref, RelativePath, SpecBase


class ModelSpec(SpecBase):
    REFERENCE_FIELDS: ClassVar[dict[str, tuple[ArtifactKind, ...]]] = {"base": ("model",)}

    type: Literal["model", "adapter"] = "model"
    format: Literal["safetensors", "gguf", "pytorch", "onnx"] = "safetensors"
    files: list[RelativePath] = Field(min_length=1)
    context_length: int = Field(gt=0, le=10_000_000)
    chat_template: str | None = None
    architecture: str | None = None
    family: str | None = None
    base: Ref | None = None  # adapters only: the model they apply to

    @model_validator(mode="after")
    def _adapter_has_base(self) -> ModelSpec:
        if self.type == "adapter" and self.base is None:
            raise ValueError("an adapter needs `base`, a reference to the model it applies to")
        if self.type == "model" and self.base is not None:
            raise ValueError("`base` is only for `type: adapter`")
        return self
