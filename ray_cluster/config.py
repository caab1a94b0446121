"""What a Ray Serve application serves: every package's settings plus the models and embedders.

``aihub serve --ray`` builds a ``ClusterConfig`` from the settings it already holds; Ray's own
``serve run ray_cluster.app:app config=cluster.yaml`` reads one with ``load_cluster_config``. The cluster
YAML is aihub's config file (sections ``app``, ``gateway``, ``serving``, ``hub``, ``retrievers``) plus a
``ray`` section (``RaySettings``), e.g.::

    app:
      home: /shared/aihub
      models:
        - {id: smollm2-135m-instruct, ref: "models/smollm2-135m-instruct:latest"}
      embedders:
        - {id: all-minilm-l6-v2, ref: "models/all-minilm-l6-v2:latest"}
    ray:
      address: auto
      models:
        smollm2-135m-instruct: {num_cpus: 1, min_replicas: 1, max_replicas: 4}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings

from core.errors import InvalidSpecError
from core.model_config import ModelConfig, adapter_aliases
from gateway.settings import GatewaySettings
from hub.settings import HubSettings
from ray_cluster.settings import RaySettings
from retrievers.settings import RetrieverSettings
from serving.settings import ServingSettings

SECTIONS = ("app", "gateway", "serving", "hub", "retrievers", "ray")
SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class AppSection(BaseModel):
    """The part of the ``app`` section a Ray application needs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    home: Path | None = None
    models: tuple[ModelConfig, ...] = ()
    embedders: tuple[ModelConfig, ...] = ()
    default_embedder: str | None = None


@dataclass(frozen=True)
class ClusterConfig:
    """Everything ``build_app`` needs; pickled into the deployments, so every field is plain data."""

    ray: RaySettings
    gateway: GatewaySettings
    serving: ServingSettings
    hub: HubSettings
    models: tuple[ModelConfig, ...]
    retrievers: RetrieverSettings | None = None  # None: no embedders or indices in this cluster
    embedders: tuple[ModelConfig, ...] = ()
    default_embedder: str | None = None

    def gateway_settings(self) -> GatewaySettings:
        """The gateway section with each adapter's hub form as an alias of its served id."""
        return self.gateway.with_aliases(adapter_aliases(self.models))

    def __post_init__(self) -> None:
        ids = [spec.id for spec in self.models]
        if len(set(ids)) != len(ids):
            raise InvalidSpecError(f"model ids must be unique, got {ids}")


def _settings(cls: type[SettingsT], section: dict[str, Any] | None) -> SettingsT:
    # As in aihub's config file: file values are defaults, the environment overrides them.
    from_env = cls().model_dump(exclude_unset=True)
    return cls(**{**(section or {}), **from_env})


def load_cluster_config(path: Path | None) -> ClusterConfig:
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidSpecError(f"cannot read cluster config {path}: {exc}") from exc
        if not isinstance(data, dict) or set(data) - set(SECTIONS):
            raise InvalidSpecError(f"cluster config {path} must be a mapping with sections among {SECTIONS}")
    sections = {name: dict(data.get(name) or {}) for name in SECTIONS}
    app = AppSection.model_validate(sections["app"])
    hub_section = {**({"home": app.home} if app.home else {}), **sections["hub"]}
    return ClusterConfig(
        ray=_settings(RaySettings, sections["ray"]),
        gateway=_settings(GatewaySettings, sections["gateway"]),
        serving=_settings(ServingSettings, sections["serving"]),
        hub=_settings(HubSettings, hub_section),
        retrievers=_settings(RetrieverSettings, sections["retrievers"]),
        models=app.models,
        embedders=app.embedders,
        default_embedder=app.default_embedder,
    )
