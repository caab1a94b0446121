"""A RAG pipeline: model, prompt, indices (and optionally an agent), retrieval and generation settings."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.store import ArtifactKind
from hub.specs.base import Ref, SpecBase


class RetrievalSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["dense", "bm25", "hybrid"] = "dense"
    top_k: int = Field(default=4, ge=1, le=1000)
    fusion: Literal["rrf", "weighted"] = "rrf"
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=0.5, ge=0, le=1)
    min_score: float | None = None
    # OpenAI vector-store filter JSON: {"type": "eq", "key": …, "value": …} or {"type": "and", "filters": […]}
    filters: dict[str, Any] | None = None


class GenerationDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] = Field(default_factory=list)


class PipelineSpec(SpecBase):
    REFERENCE_FIELDS: ClassVar[dict[str, tuple[ArtifactKind, ...]]] = {
        "model": ("model",),
        "prompt": ("prompt",),
        "indices": ("index",),
        "agent": ("agent",),
    }

    model: Ref
    prompt: Ref
    indices: list[Ref] = Field(default_factory=list)
    agent: Ref | None = None
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationDefaults = GenerationDefaults()
