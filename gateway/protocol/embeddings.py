"""Wire models of ``POST /v1/embeddings`` (OpenAI's CreateEmbeddingRequest / CreateEmbeddingResponse)."""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from core.embedder import EmbeddingInput
from core.errors import InvalidRequestError

MAX_INPUTS = 2048  # OpenAI's limit of inputs per request


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = Field(default=None, max_length=512)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def inputs(self) -> list[EmbeddingInput]:
        """The inputs as texts or token-id lists; empty input is refused."""
        value = self.input
        items: list[EmbeddingInput]
        if isinstance(value, str):
            items = [value]
        elif value and all(isinstance(v, int) for v in value):
            items = [list(value)]  # type: ignore[arg-type]
        else:
            items = list(value)  # type: ignore[arg-type]
        if not items:
            raise InvalidRequestError("'input' must not be empty", param="input")
        if len(items) > MAX_INPUTS:
            raise InvalidRequestError(f"'input' holds more than {MAX_INPUTS} items", param="input")
        for item in items:
            if len(item) == 0:
                raise InvalidRequestError(
                    "'input' must not contain empty strings or token lists", param="input"
                )
        return items


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage


def encode_vector(vector: npt.NDArray[np.float32], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
