"""The YAML configuration file and how its values meet the environment and the command line.

One section per package's settings class. A value comes from, in order of precedence: the command line,
the environment (``AIHUB_*``), the file, the class's default. A key the file's section does not know is
an error that names it: a typo must not be dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from core.errors import InvalidSpecError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

SECTIONS = ("app", "gateway", "serving", "hub", "retrievers", "ray", "tenancy")


def read_config_file(path: Path | None) -> dict[str, dict[str, Any]]:
    """The file's sections (empty without a file); an unknown section is an error."""
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
    sections: dict[str, dict[str, Any]] = {}
    for name, section in data.items():
        if section is not None and not isinstance(section, dict):
            raise InvalidSpecError(f"config file {path}: section {name!r} must be a mapping")
        sections[name] = dict(section or {})
    return sections


def layered(
    cls: type[SettingsT],
    section: str,
    file_values: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> SettingsT:
    """``cls`` from its four layers: ``overrides`` (the command line) > environment > file > defaults."""
    file_values = dict(file_values or {})
    overrides = dict(overrides or {})
    for layer, values in (("config file", file_values), ("command line", overrides)):
        unknown = set(values) - set(cls.model_fields)
        if unknown:
            raise InvalidSpecError(
                f"{layer}: unknown key(s) {sorted(unknown)} in section {section!r}; "
                f"known: {sorted(cls.model_fields)}"
            )
    try:
        from_env = cls().model_dump(exclude_unset=True)  # only what the environment set
        return cls(**{**file_values, **from_env, **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors(include_url=False)
        )
        raise InvalidSpecError(f"section {section!r}: {problems}") from None
