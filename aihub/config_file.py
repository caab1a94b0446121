"""The optional YAML configuration file: one section per package's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic_settings import BaseSettings

from core.errors import InvalidSpecError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

SECTIONS = ("app", "gateway", "serving", "hub", "retrievers", "ray")


def load_config(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidSpecError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidSpecError(f"config file {path} must hold a mapping of sections {SECTIONS}")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise InvalidSpecError(f"config file {path}: unknown sections {sorted(unknown)}; known: {SECTIONS}")
    return {name: dict(section or {}) for name, section in data.items()}


def build_settings(cls: type[SettingsT], section: dict[str, Any] | None) -> SettingsT:
    """File values are defaults; environment variables override them."""
    from_env = cls().model_dump(exclude_unset=True)
    return cls(**{**(section or {}), **from_env})
