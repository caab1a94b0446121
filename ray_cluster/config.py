"""The one config shape of both composition roots: every package's settings, from one YAML file.

``aihub serve`` (embedded) and ``aihub serve --ray`` / Ray's own ``serve run ray_cluster.app:app
config=cluster.yaml`` read the same file with ``load_config``: sections ``app``, ``gateway``,
``serving``, ``hub``, ``retrievers`` and ``ray`` (the last used in Ray mode only), e.g.::

    app:
      home: /shared/aihub
      models:
        - {id: smollm2-135m-instruct, ref: "models/smollm2-135m-instruct:latest", engine: vllm}
      embedders:
        - {id: all-minilm-l6-v2, ref: "models/all-minilm-l6-v2:latest"}
    ray:
      address: auto
      models:
        smollm2-135m-instruct: {num_cpus: 1, min_replicas: 1, max_replicas: 4}

It lives here, the lowest layer that sees every package's settings (``aihub`` may import it, and imports
nothing of Ray by doing so). Precedence: command line > environment > file > defaults
(``core.config_file``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.app_settings import AppSettings
from core.config_file import layered, read_config_file
from core.errors import InvalidSpecError
from core.model_config import ModelConfig, adapter_aliases
from gateway.settings import GatewaySettings
from hub.settings import HubSettings
from ray_cluster.settings import RaySettings
from retrievers.settings import RetrieverSettings
from serving.settings import ServingSettings
from tenancy.settings import TenancySettings


@dataclass(frozen=True)
class AihubConfig:
    """Every section; pickled into Ray deployments, so every field is plain data."""

    app: AppSettings
    gateway: GatewaySettings
    serving: ServingSettings
    hub: HubSettings
    retrievers: RetrieverSettings
    ray: RaySettings
    tenancy: TenancySettings = field(default_factory=TenancySettings)

    def __post_init__(self) -> None:
        ids = [model.id for model in self.app.models]
        if len(set(ids)) != len(ids):
            raise InvalidSpecError(f"model ids must be unique, got {ids}")

    @classmethod
    def build(
        cls,
        home: Path,
        models: tuple[ModelConfig, ...] = (),
        *,
        embedders: tuple[ModelConfig, ...] = (),
        default_embedder: str | None = None,
        gateway: GatewaySettings | None = None,
        serving: ServingSettings | None = None,
        ray: RaySettings | None = None,
        tenancy: TenancySettings | None = None,
    ) -> AihubConfig:
        """A config made in code (tests, benchmarks): no default models prepared, no demo."""
        app = AppSettings(
            home=home,
            models=models,
            embedders=embedders,
            default_embedder=default_embedder,
            prepare_defaults=False,
            demo=False,
        )
        return cls(
            app=app,
            gateway=gateway or GatewaySettings(),
            serving=serving or ServingSettings(),
            hub=HubSettings(home=home),
            retrievers=RetrieverSettings(work_dir=app.cache_dir / "retrievers"),
            ray=ray or RaySettings(),
            tenancy=tenancy or TenancySettings(),
        )

    @property
    def models(self) -> tuple[ModelConfig, ...]:
        return self.app.models

    @property
    def embedders(self) -> tuple[ModelConfig, ...]:
        return self.app.embedders

    @property
    def default_embedder(self) -> str | None:
        return self.app.default_embedder

    def gateway_settings(self) -> GatewaySettings:
        """The gateway section with each adapter's hub form as an alias of its served id."""
        bounds = {
            served: config.max_tokens
            for config in self.models
            if config.max_tokens.bounded
            for served in config.served_ids()
        }
        return self.gateway.with_aliases(adapter_aliases(self.models)).with_max_tokens(bounds)


def load_config(
    path: Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> AihubConfig:
    """The file at ``path`` (or none) under the environment, under ``overrides`` (section → values)."""
    sections = read_config_file(path)
    overrides = overrides or {}
    app = layered(AppSettings, "app", sections.get("app"), overrides.get("app"))
    # The hub and the retrievers' work folder live in the app's home unless their sections say otherwise.
    hub_file = {"home": app.home, **sections.get("hub", {})}
    retrievers_file = {"work_dir": app.cache_dir / "retrievers", **sections.get("retrievers", {})}
    return AihubConfig(
        app=app,
        gateway=layered(GatewaySettings, "gateway", sections.get("gateway"), overrides.get("gateway")),
        serving=layered(ServingSettings, "serving", sections.get("serving"), overrides.get("serving")),
        hub=layered(HubSettings, "hub", hub_file, overrides.get("hub")),
        retrievers=layered(RetrieverSettings, "retrievers", retrievers_file, overrides.get("retrievers")),
        ray=layered(RaySettings, "ray", sections.get("ray"), overrides.get("ray")),
        tenancy=layered(TenancySettings, "tenancy", sections.get("tenancy"), overrides.get("tenancy")),
    )
