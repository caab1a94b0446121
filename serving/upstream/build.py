"""Pools, engines, federations and embedders of ``openai`` models, for the composition roots."""

from __future__ import annotations

from pydantic import ValidationError

from core.errors import InvalidSpecError
from core.model_config import ModelConfig
from serving.settings import ServingSettings, UpstreamSettings
from serving.upstream.embedder import UpstreamEmbedder
from serving.upstream.engine import UpstreamEngine
from serving.upstream.federation import UpstreamFederation
from serving.upstream.pool import UpstreamPool


def upstream_settings(config: ModelConfig, settings: ServingSettings) -> UpstreamSettings:
    """``serving.upstream`` with the model's ``options`` on top; an unknown option is an error."""
    try:
        return UpstreamSettings.model_validate({**settings.upstream.model_dump(), **config.options})
    except ValidationError as exc:
        raise InvalidSpecError(f"model {config.id!r}: bad upstream options: {exc}") from None


def build_pool(config: ModelConfig, settings: ServingSettings) -> UpstreamPool:
    prefix = config.federation_prefix
    return UpstreamPool(
        config.id,
        # Members without a `model` ask for the served id; a federation names the model per request.
        config.id if prefix is None else "*",
        upstream_settings(config, settings),
        config.upstreams,
        config.upstreams_from,
    )


def build_upstream_engine(
    config: ModelConfig, settings: ServingSettings, digest: str | None = None
) -> UpstreamEngine:
    """``digest``: of the hub model ``config.ref`` names, which the upstreams are said to serve."""
    if config.federation_prefix is not None:
        raise InvalidSpecError(f"model {config.id!r}: a federation is built with build_federation")
    return UpstreamEngine(config.id, build_pool(config, settings), digest=digest)


def build_federation(config: ModelConfig, settings: ServingSettings) -> UpstreamFederation:
    prefix = config.federation_prefix
    if prefix is None:
        raise InvalidSpecError(f"model {config.id!r}: a federation's id ends in /*")
    return UpstreamFederation(prefix, build_pool(config, settings))


def build_upstream_embedder(config: ModelConfig, settings: ServingSettings) -> UpstreamEmbedder:
    return UpstreamEmbedder(config.id, build_pool(config, settings))
