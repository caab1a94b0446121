"""``build_app``: the Ray Serve application of a cluster config (the Ray mode's composition root).

Deployments: one per model (its own replica count / autoscaling, one engine per replica), one per
embedder, one retriever deployment over the hub's indices, and the gateway ingress in front.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application, Deployment

from core.errors import InvalidSpecError
from ray_cluster.config import AihubConfig, load_config
from ray_cluster.embedder_worker import EmbedderWorker
from ray_cluster.ingress import GatewayIngress
from ray_cluster.model_replica import ModelReplica
from ray_cluster.retriever_worker import RetrieverWorker
from ray_cluster.settings import RaySettings

GATEWAY_DEPLOYMENT = "gateway"
RETRIEVER_DEPLOYMENT = "retriever"


def model_deployment_name(model_id: str) -> str:
    """Serve deployment names are plain; model ids may hold ``/`` or ``:``."""
    return "model-" + re.sub(r"[^A-Za-z0-9_.-]", "_", model_id)


def embedder_deployment_name(embedder_id: str) -> str:
    return "embedder-" + re.sub(r"[^A-Za-z0-9_.-]", "_", embedder_id)


def _deployment(cls: type, name: str, options: dict[str, Any]) -> Deployment:
    with warnings.catch_warnings():
        # Serve still uses `metrics_interval_s` (nothing replaces it yet) but calls it deprecated.
        warnings.filterwarnings("ignore", "The `metrics_interval_s` field", DeprecationWarning)
        deployment: Deployment = serve.deployment(name=name, **options)(cls)
    return deployment


def _config_from_args(args: dict[str, Any]) -> AihubConfig:
    path = args.get("config")
    return load_config(Path(path) if path else RaySettings().config)


@dataclass(frozen=True)
class Backends:
    """The bound deployments behind a gateway: models, embedders, the retriever (over the embedders)."""

    models: dict[str, Application]
    embedders: dict[str, Application]
    retrievers: Application | None


def _refuse_what_ray_mode_lacks(config: AihubConfig) -> None:
    """Federations and upstream embedders are built by the embedded root only (for now): say so."""
    for spec in config.models:
        if spec.federation_prefix is not None:
            raise InvalidSpecError(f"model {spec.id!r}: federation (an id ending in /*) needs embedded mode")
    for spec in config.embedders:
        if spec.engine == "openai":
            raise InvalidSpecError(f"embedder {spec.id!r}: engine openai embedders need embedded mode")


def build_backends(config: AihubConfig) -> Backends:
    _refuse_what_ray_mode_lacks(config)
    ray = config.ray
    models = {
        spec.id: _deployment(
            ModelReplica, model_deployment_name(spec.id), ray.model_replicas(spec.id).deployment_options()
        ).bind(spec, config.serving, config.hub)
        for spec in config.models
    }
    embedders: dict[str, Application] = {}
    retrievers = None
    if config.embedders:
        embedders = {
            spec.id: _deployment(
                EmbedderWorker, embedder_deployment_name(spec.id), ray.embedders.deployment_options()
            ).bind(spec, config.hub, config.retrievers)
            for spec in config.embedders
        }
        if embedders:
            retrievers = _deployment(
                RetrieverWorker, RETRIEVER_DEPLOYMENT, ray.retrievers.deployment_options()
            ).bind(config.hub, config.retrievers, embedders)
    return Backends(models, embedders, retrievers)


def build_app(config: AihubConfig | dict[str, Any]) -> Application:
    """A Serve application; ``config`` may also be Serve's builder args (``config=cluster.yaml``)."""
    if not isinstance(config, AihubConfig):
        config = _config_from_args(config)
    backends = build_backends(config)
    ingress = _deployment(GatewayIngress, GATEWAY_DEPLOYMENT, config.ray.gateway.deployment_options())
    return ingress.bind(config, backends.models, backends.embedders, backends.retrievers)
