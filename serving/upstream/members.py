"""``upstreams_from``: a YAML file listing upstreams, or a folder with one file per upstream.

Each entry is a URL (``http://10.0.0.5:8000/v1``) or an object with the fields of ``UpstreamConfig``.
The folder form suits fleets: each replica writes its own file when it answers and removes it when it
stops, so no two writers share a file. Files whose names start with ``.`` are skipped (writers create
them under such a name and rename them into place, so a half-written file is never read).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.model_config import UpstreamConfig

logger = logging.getLogger(__name__)

MAX_MEMBER_FILE_BYTES = 1024 * 1024


def _entries(value: Any, where: Path) -> list[UpstreamConfig]:
    items = value if isinstance(value, list) else [value]
    configs = []
    for item in items:
        try:
            configs.append(
                UpstreamConfig(url=item) if isinstance(item, str) else UpstreamConfig.model_validate(item)
            )
        except ValidationError as exc:
            logger.error("%s: an upstream entry is not valid, left out: %s", where, exc.errors()[0]["msg"])
    return configs


def _read(path: Path) -> Any:
    with path.open("rb") as handle:
        data = handle.read(MAX_MEMBER_FILE_BYTES + 1)
    if len(data) > MAX_MEMBER_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_MEMBER_FILE_BYTES} bytes")
    return yaml.safe_load(data)


class MembersWatcher:
    """Polls the path; ``poll`` returns the members when something changed, else None."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: object = None

    def __str__(self) -> str:
        return str(self.path)

    def _signature_now(self) -> object:
        try:
            if self.path.is_dir():
                return tuple(
                    (p.name, p.stat().st_mtime_ns, p.stat().st_size)
                    for p in sorted(self.path.iterdir())
                    if not p.name.startswith(".") and p.is_file()
                )
            stat = self.path.stat()
            return (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            return "missing"

    def poll(self) -> list[UpstreamConfig] | None:
        signature = self._signature_now()
        if signature == self._signature:
            return None
        configs = self._load()
        if configs is None:  # unreadable now: keep the members we have, try again next time
            return None
        self._signature = signature
        return configs

    def _load(self) -> list[UpstreamConfig] | None:
        if not self.path.exists():
            return []  # no file (yet): no members from it
        try:
            if not self.path.is_dir():
                value = _read(self.path)
                return [] if value is None else _entries(value, self.path)
            configs: list[UpstreamConfig] = []
            for path in sorted(self.path.iterdir()):
                if path.name.startswith(".") or not path.is_file():
                    continue
                try:
                    value = _read(path)
                except FileNotFoundError:  # removed between listing and reading: it left
                    continue
                if value is not None:
                    configs += _entries(value, path)
            return configs
        except (OSError, ValueError, yaml.YAMLError) as exc:
            logger.error("%s: cannot read the upstream members: %s", self.path, exc)
            return None
