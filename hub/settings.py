"""Settings of the hub package."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class HubSettings(BaseSettings):
    """Where the hub lives: ``home`` is aihub's data folder (``AIHUB_HOME``), the layout is ``home/hub``."""

    model_config = SettingsConfigDict(env_prefix="AIHUB_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".aihub")
    # Docker's client configuration, read for registry credentials (``auths``).
    docker_config: Path = Field(default_factory=lambda: Path.home() / ".docker" / "config.json")
    registry_timeout_s: float = 30.0
    # A CA bundle (PEM) that registries' TLS certificates are verified against; None: the system CAs.
    ca_cert: Path | None = None

    @property
    def root(self) -> Path:
        return self.home / "hub"

    @property
    def cache_dir(self) -> Path:
        """Unpacked copies of artifacts (``materialize``), one folder per manifest digest."""
        return self.home / "cache" / "hub"
