"""What a served model id is made of: its engine kind, hub weights, options and LoRA adapters.

One shape for both composition roots (``aihub serve`` and the Ray Serve builder) and for every file
that configures them: an unknown key is an error, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.refs import ArtifactRef

EngineKind = Literal["auto", "transformers", "vllm", "fixed-latency"]


class ModelConfig(BaseModel):
    """One served model (or embedder) id and where its engine comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    ref: str | None = None  # hub reference of the weights
    engine: EngineKind = "auto"
    options: dict[str, Any] = Field(default_factory=dict)  # engine-specific settings of this model
    # Hub references of LoRA adapters bound to ``ref``; each is served as ``<id>+<adapter name>``.
    adapters: tuple[str, ...] = ()

    def adapter_ids(self) -> dict[str, str]:
        """Served id of each adapter reference: ``smollm2+adapters/pirate`` for ``adapters/pirate:v2``."""
        return {ref: f"{self.id}+{ArtifactRef.parse(ref).name}" for ref in self.adapters}

    def served_ids(self) -> tuple[str, ...]:
        return (self.id, *self.adapter_ids().values())


def adapter_aliases(models: tuple[ModelConfig, ...] | list[ModelConfig]) -> dict[str, str]:
    """``<base artifact name>+<adapter ref>`` → served adapter id, for every configured adapter.

    Adapter ``adapters/pirate`` on model ``smollm2`` (hub ``models/smollm2``) is served as
    ``smollm2+adapters/pirate``; its hub form ``models/smollm2+adapters/pirate:latest`` is an alias.
    """
    aliases: dict[str, str] = {}
    for config in models:
        if config.ref is None:
            continue
        base_name = ArtifactRef.parse(config.ref).name
        for ref, served in config.adapter_ids().items():
            aliases[f"{base_name}+{ArtifactRef.parse(ref)}"] = served
    return aliases
