"""Settings of the HTTP gateway, built once by a composition root and passed to ``create_app``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.model_config import MaxTokens
from gateway.tracing import TracingSettings


class GatewaySettings(BaseSettings):
    """``AIHUB_API_KEYS`` and ``AIHUB_MODEL_ALIASES`` are JSON (a list, an object)."""

    model_config = SettingsConfigDict(env_prefix="AIHUB_", frozen=True, extra="ignore")

    # Empty: no authentication (the embedded default on loopback).
    api_keys: list[str] = Field(default_factory=list)
    # Extra model ids that resolve to a served one, e.g. {"gpt-4o-mini": "smollm2-135m-instruct"}.
    model_aliases: dict[str, str] = Field(default_factory=dict)
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # /v1/files uploads: the largest file taken (413 above it); their bodies get this much plus a margin.
    max_file_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    # Keys of the admin API (/admin/*: upstream membership); empty: the admin API is off.
    admin_keys: list[str] = Field(default_factory=list)
    # Paths reachable without an API key even when keys are configured.
    open_paths: tuple[str, ...] = ("/health", "/ready", "/metrics")
    # OpenTelemetry export (gateway.tracing.TracingSettings); env: AIHUB_TRACING='{"exporter": "otlp"}'.
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    # The measured fast paths (gateway.fast_path): hot routes past FastAPI's router, and the HTTP
    # protocol that sends a response's head with its first event. Off: plain FastAPI on uvicorn.
    fast_paths: bool = True
    # Per served model id: the max_tokens a request without one gets, and the most one may ask for
    # (composition roots fill it from each model's config; the operator's entries win).
    max_tokens: dict[str, MaxTokens] = Field(default_factory=dict)
    # Seconds a generation request may run, queueing included; then its generation is stopped and the
    # client gets a 504 (`request_timeout`), or an error event where the stream has started. None: no limit.
    request_timeout_s: float | None = Field(default=600.0, gt=0)
    # Seconds a resolved tag (rag/<name>:<tag>) is trusted before the hub is asked again.
    composition_tag_ttl_s: float = Field(default=1.0, ge=0.0)
    # On SIGTERM: seconds requests in flight get to finish (new ones get 503, /ready 503) before each
    # stream still open is ended with an error event and [DONE] (gateway.drain).
    shutdown_grace_s: float = Field(default=20.0, ge=0.0)
    # The web console at /ui (gateway.routers.console): its pages are open, its data behind the same keys.
    console: bool = True

    def with_aliases(self, defaults: dict[str, str]) -> GatewaySettings:
        """These settings with ``defaults`` added to the aliases; the operator's own aliases win."""
        return self.model_copy(update={"model_aliases": {**defaults, **self.model_aliases}})

    def with_max_tokens(self, defaults: dict[str, MaxTokens]) -> GatewaySettings:
        return self.model_copy(update={"max_tokens": {**defaults, **self.max_tokens}})

    # Histogram buckets (seconds) for request latency and time to first token.
    latency_buckets: tuple[float, ...] = (
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        30.0,
        60.0,
        120.0,
    )
