"""What a served model id is made of: its engine kind, hub weights, options and LoRA adapters.

One shape for both composition roots (``aihub serve`` and the Ray Serve builder) and for every file
that configures them: an unknown key is an error, never silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.refs import ArtifactRef

EngineKind = Literal["auto", "transformers", "vllm", "fixed-latency", "openai"]
FEDERATION_SUFFIX = "/*"


class UpstreamConfig(BaseModel):
    """One OpenAI-compatible server behind a model id: its base URL (``…/v1``) and how to call it.

    The API key comes from an environment variable or a file, never from the config itself, so that
    configs can be shared and logged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    model: str | None = None  # the model name at the upstream; None: the served id
    api_key_env: str | None = None
    api_key_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{url!r}: an upstream URL is http(s)://host[:port]/path, e.g. http://10.0.0.5:8000/v1"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"{url!r}: an upstream URL has no query or fragment")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _one_key_source(self) -> UpstreamConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError("give an upstream's API key by api_key_env or api_key_file, not both")
        return self


class MaxTokens(BaseModel):
    """A model's ``max_tokens``: what a request without one gets, and the most a request may ask for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: int | None = Field(default=None, ge=1)
    limit: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _default_within_limit(self) -> MaxTokens:
        if self.default is not None and self.limit is not None and self.default > self.limit:
            raise ValueError(f"max_tokens default {self.default} is above its limit {self.limit}")
        return self

    @property
    def bounded(self) -> bool:
        return self.default is not None or self.limit is not None


class ModelConfig(BaseModel):
    """One served model (or embedder) id and where its engine comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    ref: str | None = None  # hub reference of the weights
    engine: EngineKind = "auto"
    options: dict[str, Any] = Field(default_factory=dict)  # engine-specific settings of this model
    # Hub references of LoRA adapters bound to ``ref``; each is served as ``<id>+<adapter name>``.
    adapters: tuple[str, ...] = ()
    # engine `openai`: the OpenAI-compatible servers that serve this id, and a file or folder of more
    # (watched: members join and leave without a restart). An id ending in ``/*`` federates: every model
    # the upstreams list is served as ``<prefix>/<their id>``.
    # The gateway fills in `default` for requests without max_tokens and refuses those above `limit`.
    max_tokens: MaxTokens = Field(default_factory=MaxTokens)
    upstreams: tuple[UpstreamConfig, ...] = ()
    upstreams_from: Path | None = None
    # With engine openai, ``ref`` is optional: the hub model the upstreams serve. Its digest is then the
    # engine's, so pipelines and agents pinned to that model compose over the upstreams.

    @model_validator(mode="after")
    def _upstreams_only_for_openai(self) -> ModelConfig:
        remote = bool(self.upstreams) or self.upstreams_from is not None
        if self.engine == "openai":
            if not remote:
                raise ValueError(f"model {self.id!r}: engine openai needs `upstreams` or `upstreams_from`")
            if self.adapters:
                raise ValueError(f"model {self.id!r}: engine openai takes no adapters (serve them upstream)")
        elif remote:
            raise ValueError(f"model {self.id!r}: `upstreams` belong to engine openai, not {self.engine!r}")
        elif self.id.endswith(FEDERATION_SUFFIX):
            raise ValueError(f"model {self.id!r}: only engine openai federates an id ending in /*")
        return self

    @property
    def federation_prefix(self) -> str | None:
        """``site-b/`` for id ``site-b/*``: the upstreams' models are served under that prefix."""
        return self.id[: -len(FEDERATION_SUFFIX) + 1] if self.id.endswith(FEDERATION_SUFFIX) else None

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
