"""Settings of both composition roots (``aihub serve`` and the Ray builder): where data lives and what
to serve. Part of the one config shape (``ray_cluster.config.AihubConfig``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.model_config import MaxTokens, ModelConfig

DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
DEFAULT_CHAT_MODEL_REF = "models/smollm2-135m-instruct:latest"
DEFAULT_CHAT_MAX_TOKENS = 256
DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_EMBEDDER_REF = "models/all-minilm-l6-v2:latest"


class AppSettings(BaseSettings):
    """Read from the environment (``AIHUB_*``) and an optional YAML file's ``app`` section."""

    model_config = SettingsConfigDict(env_prefix="AIHUB_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".aihub")
    # 256 tokens end within seconds here (vLLM-CPU decodes ~19 tokens/s per stream): a request without
    # max_tokens no longer runs to the end of the 8,192-token context.
    models: tuple[ModelConfig, ...] = (
        ModelConfig(
            id=DEFAULT_CHAT_MODEL,
            ref=DEFAULT_CHAT_MODEL_REF,
            max_tokens=MaxTokens(default=DEFAULT_CHAT_MAX_TOKENS, limit=4096),
        ),
    )
    embedders: tuple[ModelConfig, ...] = (ModelConfig(id=DEFAULT_EMBEDDER, ref=DEFAULT_EMBEDDER_REF),)
    default_embedder: str | None = DEFAULT_EMBEDDER
    prepare_defaults: bool = True  # import the offline default models into the hub on first start
    demo: bool = True  # index aihub's own docs and push rag/aihub-docs and agent/aihub-helper if missing
    log_level: str = "info"

    @property
    def hub_root(self) -> Path:
        return self.home / "hub"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"
