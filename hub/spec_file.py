"""Spec files: YAML with ``kind``, ``name``, optional ``tags`` and ``spec``; files relative to the YAML."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import InvalidSpecError
from core.refs import check_name
from core.store import ArtifactKind
from hub.specs import check_kind, validate_spec

_TOP_LEVEL = {"kind", "name", "tags", "spec"}


@dataclass(frozen=True)
class SpecFile:
    kind: ArtifactKind
    name: str
    tags: tuple[str, ...]
    spec: dict[str, Any]
    files: dict[str, Path]  # relative path (layer title) → file on disk


def load_spec_file(path: Path) -> SpecFile:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidSpecError(f"cannot read spec file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise InvalidSpecError(f"spec file {path}{line} is not valid YAML") from None
    if not isinstance(data, dict):
        raise InvalidSpecError(f"spec file {path} must hold a mapping with kind, name and spec")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise InvalidSpecError(
            f"spec file {path}: unknown top-level keys {unknown}; allowed: {sorted(_TOP_LEVEL)}"
        )
    for key in ("kind", "name"):
        if not isinstance(data.get(key), str):
            raise InvalidSpecError(f"spec file {path}: `{key}` is required (a string)")
    kind = check_kind(data["kind"])
    name = check_name(data["name"])
    tags = data.get("tags") or ["latest"]
    if isinstance(tags, str):
        tags = [tags]
    spec = data.get("spec") or {}
    if not isinstance(spec, dict):
        raise InvalidSpecError(f"spec file {path}: `spec` must be a mapping")
    parsed = validate_spec(kind, spec)  # fail early, before anything is read or written
    folder = path.parent.resolve()
    files = {relative: _file_inside(path, folder, relative) for relative in parsed.file_paths()}
    return SpecFile(kind, name, tuple(str(t) for t in tags), spec, files)


def _file_inside(path: Path, folder: Path, relative: str) -> Path:
    """The real file behind ``relative``; a symlink or ``..`` leading out of the spec's folder is
    refused, so a spec cannot make a push store /etc/passwd or a key file."""
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise InvalidSpecError(f"spec file {path}: file {relative!r} must stay inside the spec's folder")
    try:
        real = (folder / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise InvalidSpecError(
            f"spec file {path}: file {relative!r} not found next to it ({folder / relative})"
        ) from None
    if not real.is_relative_to(folder):
        raise InvalidSpecError(
            f"spec file {path}: file {relative!r} leads out of the spec's folder (to {real}); "
            "copy the file next to the spec instead of linking it"
        )
    if not real.is_file():
        raise InvalidSpecError(f"spec file {path}: file {relative!r} is not a regular file ({real})")
    return real
