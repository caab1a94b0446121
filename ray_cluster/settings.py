"""Settings of the Ray Serve mode: where the cluster is, and how each deployment is sized and scaled."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReplicaSettings(BaseModel):
    """Resources and autoscaling of one deployment; ``min_replicas == max_replicas`` is a fixed count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Fractional CPUs let several replicas share a small machine; Ray only uses them for placement.
    num_cpus: float = Field(default=0.25, ge=0)
    num_gpus: float = Field(default=0.0, ge=0)
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float = Field(default=4.0, gt=0)
    # Requests one replica takes at once (the engine batches them); beyond it they queue in the router.
    max_ongoing_requests: int = Field(default=32, ge=1)
    # Queued beyond this many, a request is refused at once (503) instead of waiting; -1: no limit.
    max_queued_requests: int = -1
    upscale_delay_s: float = Field(default=10.0, ge=0)
    downscale_delay_s: float = Field(default=60.0, ge=0)
    # How often replicas and handles report their load to the autoscaler, and over which window.
    metrics_interval_s: float = Field(default=10.0, gt=0)
    look_back_period_s: float = Field(default=30.0, gt=0)
    # How soon a dead replica is noticed and replaced by the controller.
    health_check_period_s: float = Field(default=2.0, gt=0)
    health_check_timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> ReplicaSettings:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) < min_replicas ({self.min_replicas})")
        if self.look_back_period_s <= self.metrics_interval_s:
            raise ValueError("look_back_period_s must be longer than metrics_interval_s")
        return self

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Deployment.options``."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
        }
        if self.min_replicas == self.max_replicas:
            options["num_replicas"] = self.min_replicas
        else:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "initial_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": self.upscale_delay_s,
                "downscale_delay_s": self.downscale_delay_s,
                "metrics_interval_s": self.metrics_interval_s,
                "look_back_period_s": self.look_back_period_s,
            }
        return options


class RaySettings(BaseSettings):
    """``AIHUB_RAY_*``; nested values (``AIHUB_RAY_MODELS``) are JSON. A cluster YAML's ``ray`` section."""

    model_config = SettingsConfigDict(env_prefix="AIHUB_RAY_", frozen=True, extra="ignore")

    # None: start a local Ray; "auto" or "host:port" / "ray://host:10001": join that cluster.
    address: str | None = None
    # The cluster YAML read by `serve run ray_cluster.app:app` when no `config=` argument is given.
    config: Path | None = None
    # CPUs of a local Ray started by `aihub serve --ray` (None: all of this machine's).
    num_cpus: int | None = None
    include_dashboard: bool = False
    app_name: str = "aihub"
    # Where HTTP enters: "serve", Serve's proxy in front of a gateway ingress deployment (restarted by
    # Serve, one proxy per node possible); "driver", uvicorn in the process that deployed the
    # application, which skips the proxy's hop (see ray_cluster/driver_gateway.py).
    ingress: Literal["serve", "driver"] = "serve"
    host: str = "127.0.0.1"
    port: int = 8000
    # A request waits at most this long for its first chunk (queued behind a dead or busy replica)
    # before the gateway answers 503.
    # Environment of the Ray processes this application starts, where Serve reads its tuning knobs
    # (e.g. RAY_SERVE_THROUGHPUT_OPTIMIZED=1; on a busy 2-core machine it did not lower latency).
    # The default sends handle calls over gRPC by value instead of through the object store: on a
    # 2-core machine that took a streamed first chunk from a model replica from 1.29x to 1.18x of
    # embedded mode (`aihub bench --ray`). The driver applies these to its own handles as well.
    serve_env: dict[str, str] = Field(default_factory=lambda: {"RAY_SERVE_USE_GRPC_BY_DEFAULT": "1"})
    log_level: str = "WARNING"  # of the Serve controller, proxy and replicas
    access_log: bool = False  # a log line per request in every replica (costs latency)
    first_chunk_timeout_s: float = Field(default=60.0, gt=0)
    gateway: ReplicaSettings = ReplicaSettings(num_cpus=0.25, max_ongoing_requests=256)
    default_model: ReplicaSettings = ReplicaSettings()
    models: dict[str, ReplicaSettings] = Field(default_factory=dict)  # model id -> its replicas
    embedders: ReplicaSettings = ReplicaSettings(num_cpus=0.25, max_ongoing_requests=64)
    retrievers: ReplicaSettings = ReplicaSettings(num_cpus=0.25, max_ongoing_requests=64)

    def model_replicas(self, model_id: str) -> ReplicaSettings:
        return self.models.get(model_id, self.default_model)
