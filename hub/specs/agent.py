"""An agent: a model, a system prompt, tools (some search an index) and a step limit."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.store import ArtifactKind
from hub.specs.base import Ref, Reference, SpecBase


class ToolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
    type: str = "search"
    description: str = ""
    index: Ref | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class AgentSpec(SpecBase):
    REFERENCE_FIELDS: ClassVar[dict[str, tuple[ArtifactKind, ...]]] = {"model": ("model",)}

    model: Ref
    system_prompt: str = ""
    tools: list[ToolSpec] = Field(default_factory=list)
    max_steps: int = Field(default=5, ge=1, le=100)
    # "required": the first step must call one of the tools, held to their schemas by constrained
    # decoding (needs a model whose engine has structured output, e.g. vLLM). "auto": the model decides.
    tool_choice: Literal["auto", "required"] = "auto"

    def references(self) -> list[Reference]:
        found = super().references()
        found.extend(
            (("tools", i, "index"), tool.index, ("index",))
            for i, tool in enumerate(self.tools)
            if tool.index is not None
        )
        return found
