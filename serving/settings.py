"""Settings of the serving package (engines), read from ``AIHUB_SERVING_*`` and the config file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIHUB_SERVING_", frozen=True, extra="ignore")

    max_batch_size: int = Field(default=16, ge=1)  # sequences decoded together by the CPU engine
    torch_threads: int | None = Field(default=None, ge=1)  # None: torch's own default
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    # Prompts prefilled per scheduler step, so a burst of new requests does not stall running streams.
    max_prefills_per_step: int = Field(default=4, ge=1)
    # Overrides the model config's context length (None: ``max_position_embeddings``).
    max_context_length: int | None = Field(default=None, ge=16)
